import { realpathSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";
import { hostProcesses } from "../helpers/invariants.js";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { waitFor } from "../helpers/workspace.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

/** DESIGN §4, one test per row: restart types, intensity, backoff. */
describe("restart policy", () => {
  it("transient: a crash is restarted with backoff in the same worktree; intensity exceeded → zombie with exactly one worker_died", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "crashy", cmd: agent("--info", "--exit", "3"), policy: { maxRestarts: 3 } });
    const zombie = await h.waitForState("crashy", "zombie");
    expect(zombie).toMatchObject({ reason: "intensity", restarts: 3, pid: null });
    expect(zombie.exit).toMatchObject({ code: 3 });
    // Every start ran in the same worktree and resumed there.
    const cwds = [...h.output("crashy").matchAll(/INFO (\{.*\})/g)].map((m) => realpathSync(JSON.parse(m[1]!).cwd));
    expect(cwds.length).toBe(4);
    expect(new Set(cwds)).toEqual(new Set([zombie.worktree]));
    const path = h.transitions("crashy");
    expect(path.filter((to) => to === "booting.backoff")).toHaveLength(3);
    expect(path.at(-1)).toBe("zombie");
    expect(h.notices("crashy", "worker_died")).toHaveLength(1);
    expect(h.notices("crashy", "worker_died")[0]).toMatchObject({ to: "operator", reason: "intensity" });
    // Nothing is armed for a zombie: it stays put.
    expect((await h.supervisor.get("crashy")).state).toBe("zombie");
  });

  it("transient: a clean exit 0 completes the builder (and flags the missing worker_done to its parent)", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang") });
    await h.supervisor.spawn({ name: "quick", cmd: agent("--print", "bye", "--exit", "0"), parent: "lead" });
    const done = await h.waitForState("quick", "completed");
    expect(done).toMatchObject({ reason: "exited", restarts: 0 });
    expect(h.notices("quick", "contract_violation")).toEqual([expect.objectContaining({ to: "lead" })]);
  });

  it("permanent: even a clean exit is restarted", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "forever", cmd: agent("--exit", "0"), restart: "permanent", policy: { maxRestarts: 2 } });
    const st = await h.waitForState("forever", "zombie");
    expect(st).toMatchObject({ restarts: 2, reason: "intensity" });
  });

  it("temporary: a crash is never restarted", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "once", cmd: agent("--exit", "5"), restart: "temporary" });
    const st = await h.waitForState("once", "zombie");
    expect(st).toMatchObject({ restarts: 0, reason: "crashed" });
    expect(h.transitions("once")).not.toContain("booting.backoff");
    expect(h.notices("once", "worker_died")).toHaveLength(1);
  });

  it("a dead agent's pty host is collected and exits: no host lingers beside a zombie", async () => {
    h = await Harness.start(FAST); // FAST keeps an uncollected host for 60 s: longer than this test waits
    const st = await h.supervisor.spawn({ name: "gone", cmd: agent("--hang"), restart: "temporary" });
    const hosts = hostProcesses(h.repo);
    expect(hosts).toHaveLength(1);
    signalProcessTree(st.pid!, "SIGKILL");
    await h.waitForState("gone", "zombie");
    await waitFor(() => !isProcessAlive(hosts[0]!), "the host to exit once its exit status was collected");
    expect(hostProcesses(h.repo)).toEqual([]);
  });

  it("restarts outside the intensity period do not count", async () => {
    h = await Harness.start();
    // periodMs 0: no restart is ever inside the window, so a crash loop keeps being restarted.
    await h.supervisor.spawn({ name: "loop", cmd: agent("--exit", "1"), policy: { maxRestarts: 1, periodMs: 0 } });
    await waitFor(async () => (await h!.supervisor.get("loop")).restarts >= 4, "four restarts");
    expect((await h.supervisor.get("loop")).state).not.toBe("zombie");
    await h.supervisor.stop("loop").catch(() => undefined);
  });

  it("an explicit restart brings a zombie back in the same worktree", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "z", cmd: agent("--exit", "2"), restart: "temporary" });
    const dead = await h.waitForState("z", "zombie");
    const back = await h.supervisor.restart("z");
    expect(back.worktree).toBe(dead.worktree);
    expect(back.restarts).toBe(1);
  });
});

/** DESIGN §4 strategies: what a restart of one builder does to its siblings. */
describe("strategies", () => {
  async function family(strategy: "one_for_one" | "one_for_all" | "rest_for_one", cRestart: "transient" | "temporary" = "transient") {
    h = await Harness.start(FAST);
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang"), strategy });
    const a = await h.supervisor.spawn({ name: "a", cmd: agent("--hang"), parent: "lead" });
    const b = await h.supervisor.spawn({ name: "b", cmd: agent("--hang"), parent: "lead" });
    const c = await h.supervisor.spawn({ name: "c", cmd: agent("--hang"), parent: "lead", restart: cRestart });
    signalProcessTree(b.pid!, "SIGKILL");
    await waitFor(async () => {
      const st = await h!.supervisor.get("b");
      return st.state === "working" && st.pid !== b.pid;
    }, "b restarted");
    return { a, b, c };
  }

  async function restartedOrSame(name: string, oldPid: number): Promise<"restarted" | "same"> {
    const st = await waitFor(async () => {
      const s = await h!.supervisor.get(name);
      return s.state === "working" ? s : null;
    }, `${name} working`);
    return st.pid === oldPid ? "same" : "restarted";
  }

  it("one_for_one: only the crashed builder is restarted", async () => {
    const { a, c } = await family("one_for_one");
    expect(await restartedOrSame("a", a.pid!)).toBe("same");
    expect(await restartedOrSame("c", c.pid!)).toBe("same");
    expect(isProcessAlive(a.pid!)).toBe(true);
  });

  it("one_for_all: every sibling is restarted too, in its own worktree", async () => {
    const { a, c } = await family("one_for_all");
    await waitFor(async () => (await h!.supervisor.get("a")).pid !== a.pid && (await h!.supervisor.get("c")).pid !== c.pid, "siblings restarted");
    expect(await restartedOrSame("a", a.pid!)).toBe("restarted");
    expect(await restartedOrSame("c", c.pid!)).toBe("restarted");
    expect(isProcessAlive(a.pid!)).toBe(false);
    expect((await h!.supervisor.get("a")).worktree).toBe(a.worktree);
    expect(h!.transitions("a")).toContain("booting.starting");
    // The lead (the node's owner) is not a sibling.
    expect((await h!.supervisor.get("lead")).restarts).toBe(0);
  });

  it("rest_for_one: the siblings spawned after the crashed one are restarted, earlier ones are not", async () => {
    const { a, c } = await family("rest_for_one");
    await waitFor(async () => (await h!.supervisor.get("c")).pid !== c.pid && (await h!.supervisor.get("c")).state === "working", "c restarted");
    expect(await restartedOrSame("a", a.pid!)).toBe("same");
    expect(await restartedOrSame("c", c.pid!)).toBe("restarted");
  });

  it("one_for_all: a temporary sibling is stopped, never restarted", async () => {
    const { c } = await family("one_for_all", "temporary");
    const st = await h!.waitForState("c", "completed");
    expect(st.reason).toBe("stopped");
    expect(isProcessAlive(c.pid!)).toBe(false);
  });
});
