/**
 * The restart policy rows of DESIGN §4 and the stall/zombie deadlines, one
 * behaviour per test, driven purely (every time is an explicit `at`).
 */
import { describe, expect, it } from "vitest";
import {
  BUILDER_MACHINE_VERSION,
  DEFAULT_POLICY,
  backoffDelay,
  lifeStateOf,
  nextDeadline,
  policyProblems,
  resolvePolicy,
  type BuilderEvent,
  type BuilderSnapshot,
} from "../../src/machines/builder.js";
import { builderMachineDefinition } from "../../src/machines/definition.js";
import { T0, boot, drive, roundTrip, step, where, working } from "./fixtures.js";

const crash = (at: number, jitter = 0.5): BuilderEvent => ({ type: "EXITED", at, code: 1, signal: null, jitter });
const clean = (at: number, jitter = 0.5): BuilderEvent => ({ type: "EXITED", at, code: 0, signal: null, jitter });

/** Exit, wait out the backoff, start again; returns the snapshot working again. */
function crashAndRestart(snapshot: BuilderSnapshot, at: number, jitter = 0.5): BuilderSnapshot {
  const backoff = drive(snapshot, [crash(at, jitter)]);
  expect(where(backoff)).toBe("booting.backoff");
  const restartAt = backoff.context.deadlines.restartAt!;
  return drive(backoff, [
    { type: "BACKOFF_ELAPSED", at: restartAt },
    { type: "STARTED", at: restartAt, pid: 4243, pty: true },
  ]);
}

describe("policy defaults", () => {
  it("match DESIGN §4", () => {
    expect(BUILDER_MACHINE_VERSION).toBe(1);
    expect(DEFAULT_POLICY).toEqual({
      maxRestarts: 3,
      periodMs: 600_000,
      backoffInitialMs: 1000,
      backoffMaxMs: 60_000,
      backoffJitter: 0.2,
      stableMs: 60_000,
      stallMs: 300_000,
      zombieMs: 900_000,
    });
    expect(policyProblems(DEFAULT_POLICY)).toEqual([]);
  });

  it("merges numeric overrides only and reports unusable ones", () => {
    const merged = resolvePolicy({ maxRestarts: 5, stallMs: undefined, killTimeoutMs: 10 } as never);
    expect(merged).toEqual({ ...DEFAULT_POLICY, maxRestarts: 5 });
    expect(boot({ policy: { stallMs: 50 } }).context.policy.stallMs).toBe(50);
    expect(policyProblems(resolvePolicy({ stallMs: 10, zombieMs: 10 }))).toEqual([expect.stringContaining("zombieMs")]);
    expect(policyProblems(resolvePolicy({ backoffJitter: 1 }))).toEqual([expect.stringContaining("backoffJitter")]);
  });
});

describe("restart types", () => {
  it("transient: exit 0 → completed (exited)", () => {
    const next = step(working(), clean(T0 + 10));
    expect(where(next)).toBe("completed");
    expect(next.context.reason).toBe("exited");
    expect(next.context.lastExit).toEqual({ code: 0, signal: null, at: T0 + 10 });
    expect(next.context.restarts).toBe(0);
  });

  it("transient: crash → backoff, counted", () => {
    const next = step(working(), crash(T0 + 10));
    expect(where(next)).toBe("booting.backoff");
    expect(next.context.restarts).toBe(1);
    expect(next.context.restartTimes).toEqual([T0 + 10]);
    expect(next.context.backoffStep).toBe(1);
    expect(next.context.deadlines).toEqual({ restartAt: T0 + 10 + 1000, stallAt: null, zombieAt: null });
    expect(next.context.lastExit).toEqual({ code: 1, signal: null, at: T0 + 10 });
    expect(next.context.reason).toBeNull();
  });

  it("transient: killed by a signal with code null is abnormal → backoff", () => {
    const next = step(working(), { type: "EXITED", at: T0 + 10, code: null, signal: "SIGKILL", jitter: 0.5 });
    expect(where(next)).toBe("booting.backoff");
  });

  it("permanent: exit 0 → backoff", () => {
    const next = step(working({ restartType: "permanent" }), clean(T0 + 10));
    expect(where(next)).toBe("booting.backoff");
    expect(next.context.restarts).toBe(1);
  });

  it("temporary: crash → zombie (crashed), exit 0 → completed", () => {
    const crashed = step(working({ restartType: "temporary" }), crash(T0 + 10));
    expect(where(crashed)).toBe("zombie");
    expect(crashed.context.reason).toBe("crashed");
    expect(crashed.context.restarts).toBe(0);
    const done = step(working({ restartType: "temporary" }), clean(T0 + 10));
    expect(where(done)).toBe("completed");
  });

  it("START_FAILED follows the abnormal-exit rule: backoff, or zombie (start_failed)", () => {
    const failed: BuilderEvent = { type: "START_FAILED", at: T0 + 5, error: "pty host did not answer", jitter: 0.5 };
    const transient = step(boot(), failed);
    expect(where(transient)).toBe("booting.backoff");
    expect(transient.context.error).toBe("pty host did not answer");
    expect(transient.context.restartTimes).toEqual([T0 + 5]);
    const temporary = step(boot({ restartType: "temporary", initial: "starting" }), failed);
    expect(where(temporary)).toBe("zombie");
    expect(temporary.context.reason).toBe("start_failed");
    // Intensity spent: a failed start gives up with the same reason.
    const spent = boot({ policy: { maxRestarts: 0 }, initial: "starting" });
    expect(where(step(spent, failed))).toBe("zombie");
    expect(step(spent, failed).context.reason).toBe("start_failed");
  });

  it("a successful start clears the start error", () => {
    const failed = step(boot({ initial: "starting" }), { type: "START_FAILED", at: T0, error: "x", jitter: 0.5 });
    const started = drive(failed, [
      { type: "BACKOFF_ELAPSED", at: failed.context.deadlines.restartAt! },
      { type: "STARTED", at: T0 + 5000, pid: 1, pty: false },
    ]);
    expect(started.context.error).toBeNull();
    expect(started.context.pty).toBe(false);
  });
});

describe("intensity", () => {
  it("maxRestarts within periodMs → zombie (intensity) on the next exit", () => {
    let snapshot = working();
    for (let i = 1; i <= 3; i++) snapshot = crashAndRestart(snapshot, T0 + i * 10_000);
    expect(snapshot.context.restartTimes).toHaveLength(3);
    const last = step(snapshot, crash(T0 + 40_000));
    expect(where(last)).toBe("zombie");
    expect(last.context.reason).toBe("intensity");
    expect(last.context.restarts).toBe(3);
    expect(last.context.lastExit?.at).toBe(T0 + 40_000);
    expect(nextDeadline(last)).toBeNull();
  });

  it("restarts older than periodMs do not count (and are pruned)", () => {
    let snapshot = working();
    for (let i = 1; i <= 3; i++) snapshot = crashAndRestart(snapshot, T0 + i * 10_000);
    // The first restart (T0+10s) leaves the window at T0+10s+periodMs.
    const later = T0 + 10_000 + DEFAULT_POLICY.periodMs;
    const next = step(snapshot, crash(later));
    expect(where(next)).toBe("booting.backoff");
    expect(next.context.restartTimes).toEqual([T0 + 20_000, T0 + 30_000, later]);
    expect(next.context.restarts).toBe(4);
  });

  it("the window is (at − periodMs, at]: a restart exactly periodMs ago no longer counts", () => {
    let snapshot = working({ policy: { maxRestarts: 1 } });
    snapshot = crashAndRestart(snapshot, T0 + 1000);
    expect(where(step(snapshot, crash(T0 + 1000 + DEFAULT_POLICY.periodMs - 1)))).toBe("zombie");
    expect(where(step(snapshot, crash(T0 + 1000 + DEFAULT_POLICY.periodMs)))).toBe("booting.backoff");
  });

  it("an explicit RESTART resets intensity and backoff", () => {
    let snapshot = working({ policy: { maxRestarts: 1 } });
    snapshot = crashAndRestart(snapshot, T0 + 1000);
    snapshot = step(snapshot, crash(T0 + 2000));
    expect(snapshot.context.reason).toBe("intensity");
    const restarted = step(snapshot, { type: "RESTART", at: T0 + 3000 });
    expect(where(restarted)).toBe("booting.starting");
    expect(restarted.context).toMatchObject({
      restarts: 2,
      restartTimes: [],
      backoffStep: 0,
      reason: null,
      deadlines: { restartAt: null, stallAt: null, zombieAt: null },
    });
    const again = drive(restarted, [{ type: "STARTED", at: T0 + 4000, pid: 9, pty: true }, crash(T0 + 5000)]);
    expect(where(again)).toBe("booting.backoff");
    expect(again.context.deadlines.restartAt).toBe(T0 + 5000 + 1000);
  });
});

describe("backoff", () => {
  const policy = DEFAULT_POLICY;

  it("doubles per step and is capped at backoffMaxMs", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((n) => backoffDelay(policy, n, 0.5))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000,
    ]);
  });

  it("jitter spreads ±20 % around the nominal delay, also at the cap", () => {
    expect(backoffDelay(policy, 0, 0)).toBe(800);
    expect(backoffDelay(policy, 0, 0.999_999)).toBe(1200);
    expect(backoffDelay(policy, 10, 0)).toBe(48_000);
    expect(backoffDelay(policy, 10, 0.75)).toBe(66_000);
    for (let j = 0; j < 1; j += 0.01) {
      const delay = backoffDelay(policy, 3, j);
      expect(delay).toBeGreaterThanOrEqual(8000 * 0.8);
      expect(delay).toBeLessThanOrEqual(8000 * 1.2);
    }
    expect(backoffDelay({ ...policy, backoffJitter: 0 }, 2, 0.1)).toBe(4000);
  });

  it("the machine arms restartAt from backoffStep and the event's jitter", () => {
    let snapshot = working({ policy: { maxRestarts: 10 } });
    const delays: number[] = [];
    for (let i = 1; i <= 8; i++) {
      const at = T0 + i * 1000;
      const backoff = step(snapshot, crash(at, 0.5));
      delays.push(backoff.context.deadlines.restartAt! - at);
      snapshot = drive(backoff, [
        { type: "BACKOFF_ELAPSED", at: backoff.context.deadlines.restartAt! },
        { type: "STARTED", at: at + 1, pid: i, pty: true },
      ]);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    const jittered = step(working(), crash(T0 + 10, 0));
    expect(jittered.context.deadlines.restartAt).toBe(T0 + 10 + 800);
  });

  it("resets after the builder has been up ≥ stableMs", () => {
    let snapshot = working({ policy: { maxRestarts: 10 } });
    snapshot = crashAndRestart(snapshot, T0 + 1000);
    snapshot = crashAndRestart(snapshot, T0 + 2000);
    expect(snapshot.context.backoffStep).toBe(2);
    const startedAt = snapshot.context.startedAt!;
    // Up one millisecond short of stable: the backoff keeps growing.
    const short = step(snapshot, crash(startedAt + DEFAULT_POLICY.stableMs - 1));
    expect(short.context.deadlines.restartAt! - (startedAt + DEFAULT_POLICY.stableMs - 1)).toBe(4000);
    // Up exactly stableMs: it starts over.
    const stable = step(snapshot, crash(startedAt + DEFAULT_POLICY.stableMs));
    expect(stable.context.deadlines.restartAt! - (startedAt + DEFAULT_POLICY.stableMs)).toBe(1000);
    expect(stable.context.backoffStep).toBe(1);
  });

  it("BACKOFF_ELAPSED before restartAt is not handled", () => {
    const backoff = step(working(), crash(T0 + 10));
    const early: BuilderEvent = { type: "BACKOFF_ELAPSED", at: backoff.context.deadlines.restartAt! - 1 };
    expect(backoff.can(early)).toBe(false);
    expect(step(backoff, early)).toBe(backoff);
    const due: BuilderEvent = { type: "BACKOFF_ELAPSED", at: backoff.context.deadlines.restartAt! };
    expect(backoff.can(due)).toBe(true);
    expect(where(step(backoff, due))).toBe("booting.starting");
  });

  it("STOPPED in backoff cancels the restart → zombie (stopped)", () => {
    const stopped = step(step(working(), crash(T0 + 10)), { type: "STOPPED", at: T0 + 20 });
    expect(where(stopped)).toBe("zombie");
    expect(stopped.context.reason).toBe("stopped");
    expect(nextDeadline(stopped)).toBeNull();
  });
});

describe("stall and zombie deadlines", () => {
  const { stallMs, zombieMs } = DEFAULT_POLICY;

  it("STARTED arms stallAt and zombieAt from the start", () => {
    const snapshot = working();
    expect(snapshot.context).toMatchObject({
      startedAt: T0,
      lastActivityAt: T0,
      deadlines: { restartAt: null, stallAt: T0 + stallMs, zombieAt: T0 + zombieMs },
      doneReported: false,
      pid: 4242,
      pty: true,
    });
    expect(nextDeadline(snapshot)).toEqual({ kind: "stall", at: T0 + stallMs });
  });

  it("STALL_CHECK before stallAt is not handled", () => {
    const snapshot = working();
    const early: BuilderEvent = { type: "STALL_CHECK", at: T0 + stallMs - 1 };
    expect(snapshot.can(early)).toBe(false);
    expect(step(snapshot, early)).toBe(snapshot);
  });

  it("OUTPUT pushes both deadlines out", () => {
    const snapshot = step(working(), { type: "OUTPUT", at: T0 + 1000 });
    expect(where(snapshot)).toBe("working.active");
    expect(snapshot.context.lastActivityAt).toBe(T0 + 1000);
    expect(snapshot.context.deadlines).toEqual({ restartAt: null, stallAt: T0 + 1000 + stallMs, zombieAt: T0 + 1000 + zombieMs });
    expect(snapshot.can({ type: "STALL_CHECK", at: T0 + stallMs })).toBe(false);
  });

  it("stall → stalled → OUTPUT → active", () => {
    const stalled = step(working(), { type: "STALL_CHECK", at: T0 + stallMs });
    expect(where(stalled)).toBe("working.stalled");
    expect(nextDeadline(stalled)).toEqual({ kind: "zombie", at: T0 + zombieMs });
    expect(stalled.can({ type: "STALL_CHECK", at: T0 + stallMs + 1 })).toBe(false);
    const active = step(stalled, { type: "OUTPUT", at: T0 + stallMs + 5 });
    expect(where(active)).toBe("working.active");
    expect(nextDeadline(active)).toEqual({ kind: "stall", at: T0 + stallMs + 5 + stallMs });
  });

  it("stalled past zombieAt: STALL_KILLED → zombie (stalled)", () => {
    const stalled = step(working(), { type: "STALL_CHECK", at: T0 + stallMs });
    const zombie = step(stalled, { type: "STALL_KILLED", at: T0 + zombieMs });
    expect(where(zombie)).toBe("zombie");
    expect(zombie.context.reason).toBe("stalled");
    expect(nextDeadline(zombie)).toBeNull();
    // Only a stalled builder is killed for silence.
    expect(working().can({ type: "STALL_KILLED", at: T0 + zombieMs })).toBe(false);
  });

  it("a stalled builder that exits follows the restart policy", () => {
    const stalled = step(working(), { type: "STALL_CHECK", at: T0 + stallMs });
    expect(where(step(stalled, crash(T0 + stallMs + 1)))).toBe("booting.backoff");
  });
});

describe("ends of a run", () => {
  it("DONE → completed (worker_done), and the flag resets on the next start", () => {
    const done = step(working(), { type: "DONE", at: T0 + 100 });
    expect(where(done)).toBe("completed");
    expect(done.context).toMatchObject({ reason: "worker_done", doneReported: true });
    expect(nextDeadline(done)).toBeNull();
    const again = drive(done, [
      { type: "RESTART", at: T0 + 200 },
      { type: "STARTED", at: T0 + 300, pid: 7, pty: true },
    ]);
    expect(again.context.doneReported).toBe(false);
    expect(again.context.reason).toBeNull();
  });

  it("STOPPED while working → completed (stopped)", () => {
    const stopped = step(working(), { type: "STOPPED", at: T0 + 100 });
    expect(where(stopped)).toBe("completed");
    expect(stopped.context.reason).toBe("stopped");
  });

  it("SIBLING_RESTART → booting.starting without spending intensity", () => {
    const restarted = step(working({ policy: { maxRestarts: 0 } }), { type: "SIBLING_RESTART", at: T0 + 100, cause: "bob" });
    expect(where(restarted)).toBe("booting.starting");
    expect(restarted.context).toMatchObject({ restarts: 1, restartTimes: [], deadlines: { restartAt: null, stallAt: null, zombieAt: null } });
  });

  it("DESTROY from anywhere but destroying/destroyed, then teardown to the tombstone", () => {
    const destroying = step(working(), { type: "DESTROY", at: T0 + 1 });
    expect(where(destroying)).toBe("destroying.stopping");
    expect(destroying.context.reason).toBe("destroyed");
    expect(nextDeadline(destroying)).toBeNull();
    expect(destroying.can({ type: "DESTROY", at: T0 + 2 })).toBe(false);
    const removing = step(destroying, { type: "PROCESS_GONE", at: T0 + 2 });
    expect(where(removing)).toBe("destroying.removingWorktree");
    const destroyed = step(removing, { type: "WORKTREE_REMOVED", at: T0 + 3 });
    expect(where(destroyed)).toBe("destroyed");
    expect(destroyed.status).toBe("done");
    expect(destroyed.can({ type: "RESTART", at: T0 + 4 })).toBe(false);
    expect(destroyed.can({ type: "DESTROY", at: T0 + 4 })).toBe(false);
  });
});

describe("creation", () => {
  it("starts in booting.provisioning, or booting.starting for an existing worktree", () => {
    expect(lifeStateOf(boot())).toEqual({ state: "booting", substate: "provisioning" });
    expect(lifeStateOf(boot({ initial: "starting" }))).toEqual({ state: "booting", substate: "starting" });
    expect(boot({ initial: "starting" }).can({ type: "PROVISIONED", at: T0, worktree: "/w", branch: "b" })).toBe(false);
    const snapshot = boot();
    expect(snapshot.context).toMatchObject({ id: "b1", name: "alice", restartType: "transient", restarts: 0, createdAt: T0, worktree: null });
    const provisioned = step(snapshot, { type: "PROVISIONED", at: T0 + 1, worktree: "/w", branch: "troupe/alice" });
    expect(where(provisioned)).toBe("booting.starting");
    expect(provisioned.context).toMatchObject({ worktree: "/w", branch: "troupe/alice" });
  });

  it("lifeStateOf reads atomic and compound values and rejects foreign ones", () => {
    expect(lifeStateOf({ value: "zombie" })).toEqual({ state: "zombie", substate: null });
    expect(lifeStateOf({ value: { working: "stalled" } })).toEqual({ state: "working", substate: "stalled" });
    expect(() => lifeStateOf({ value: "sleeping" })).toThrow(/unknown life state/);
  });
});

describe("persistence", () => {
  it("a persisted snapshot restores to the same state and context", () => {
    const snapshot = step(working(), crash(T0 + 10));
    const restored = roundTrip(snapshot);
    expect(restored.value).toEqual(snapshot.value);
    expect(restored.context).toEqual(snapshot.context);
    // The restored builder carries on with the same decisions.
    const due: BuilderEvent = { type: "BACKOFF_ELAPSED", at: snapshot.context.deadlines.restartAt! };
    expect(restored.can(due)).toBe(true);
    expect(restored.can({ ...due, at: due.at - 1 })).toBe(false);
  });

  it("restore re-exposes the deadlines through nextDeadline (restart, stall, zombie)", () => {
    const backoff = step(working(), crash(T0 + 10, 0.25));
    expect(nextDeadline(roundTrip(backoff))).toEqual({ kind: "restart", at: T0 + 10 + 900 });
    const active = step(working(), { type: "OUTPUT", at: T0 + 50 });
    expect(nextDeadline(roundTrip(active))).toEqual({ kind: "stall", at: T0 + 50 + DEFAULT_POLICY.stallMs });
    const stalled = step(working(), { type: "STALL_CHECK", at: T0 + DEFAULT_POLICY.stallMs });
    expect(nextDeadline(roundTrip(stalled))).toEqual({ kind: "zombie", at: T0 + DEFAULT_POLICY.zombieMs });
  });

  it("the restore input does not override the persisted context", () => {
    const snapshot = working({ policy: { stallMs: 1234 } });
    const restored = roundTrip(snapshot, { id: "other", name: "other", restartType: "temporary", at: 0 });
    expect(restored.context).toEqual(snapshot.context);
  });
});

describe("builderMachineDefinition", () => {
  it("is plain JSON listing every state and event-labelled transition", () => {
    const definition = builderMachineDefinition();
    expect(JSON.parse(JSON.stringify(definition))).toEqual(definition);
    expect(definition.id).toBe("builder");
    expect(definition.initial).toBe("booting.provisioning");
    expect(definition.states.map((s) => s.id)).toEqual([
      "booting",
      "booting.provisioning",
      "booting.starting",
      "booting.backoff",
      "working",
      "working.active",
      "working.stalled",
      "completed",
      "zombie",
      "destroying",
      "destroying.stopping",
      "destroying.removingWorktree",
      "destroyed",
    ]);
    expect(definition.states.find((s) => s.id === "destroyed")?.type).toBe("final");
    const exits = definition.transitions.filter((t) => t.event === "EXITED");
    expect(exits.map((t) => [t.source, t.targets, t.guard])).toEqual([
      ["working", ["booting.backoff"], { type: "outcomeIs", params: { outcome: "restart" } }],
      ["working", ["zombie"], { type: "outcomeIs", params: { outcome: "intensity" } }],
      ["working", ["completed"], { type: "outcomeIs", params: { outcome: "exited" } }],
      ["working", ["zombie"], null],
    ]);
    expect(definition.transitions).toContainEqual({
      source: "working.stalled",
      event: "OUTPUT",
      targets: ["working.active"],
      guard: null,
      actions: [{ type: "noteActivity" }],
    });
  });
});
