/**
 * Every transition of the builder statechart, taken by a real supervisor
 * (DESIGN §13): real git worktrees, real pty hosts, real agent processes.
 *
 * The list of transitions comes from the chart itself (its JSON definition),
 * so a transition added to the chart without a real scenario here fails the
 * coverage test. Each scenario drives the world the way a user or an agent
 * would (spawn, kill the agent, let it exit, go silent, print, send
 * worker_done, stop, restart, destroy, adopt), then checks from the recorded
 * transitions that the edge was taken, and at each stable step that the world
 * (process table, `git worktree list`, branches) matches the state.
 */
import { rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connectPtyHost } from "../../src/actors/index.js";
import { builderMachineDefinition } from "../../src/machines/definition.js";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";
import { workspaceLayout } from "../../src/supervisor/layout.js";
import type { BuilderStatus } from "../../src/supervisor/types.js";
import { agentProcesses } from "../../src/supervisor/world.js";
import { openStore } from "../../src/storage/index.js";
import { invariantViolations } from "../helpers/invariants.js";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { git, waitFor } from "../helpers/workspace.js";

type Transition = ReturnType<typeof builderMachineDefinition>["transitions"][number];
const chart = builderMachineDefinition();

/** One transition of the chart, named by where it goes (and the outcome its guard tests). */
function edge(source: string, event: string | null, target: string | null, guard?: string): Transition {
  const found = chart.transitions.filter(
    (t) =>
      t.source === source &&
      t.event === event &&
      (target === null ? t.targets.length === 0 : t.targets.includes(target)) &&
      (guard === undefined ? t.guard === null || !JSON.stringify(t.guard).includes("outcome") : JSON.stringify(t.guard ?? {}).includes(guard)),
  );
  if (found.length !== 1) throw new Error(`the chart has ${found.length} transitions ${source} --${event}--> ${target} ${guard ?? ""}`);
  return found[0]!;
}
const label = (t: Transition) => `${t.source} --${t.event ?? "(always)"}${t.guard ? ` [${JSON.stringify(t.guard.params ?? t.guard.type)}]` : ""}--> ${t.targets.join(",") || "(itself)"}`;
const within = (path: string, ancestor: string) => path === ancestor || path.startsWith(`${ancestor}.`);

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

function took(name: string, t: Transition): boolean {
  return h!.events.some(
    (e) => e.type === "transition" && e.name === name && e.event === t.event && within(e.from, t.source) && (t.targets.length === 0 ? e.from === e.to : t.targets.some((target) => within(e.to, target))),
  );
}

const full = (b: BuilderStatus) => (b.substate ? `${b.state}.${b.substate}` : b.state);

/** The world as the kernel and git see it matches the builder's state. */
async function expectWorld(name: string, state: string): Promise<BuilderStatus> {
  const b = await h!.waitForState(name, state);
  const all = await h!.supervisor.status({ all: true });
  const st = all.filter((x) => x.name === name).at(-1)!;
  expect(full(st), `${name}`).toBe(full(b));
  const agents = agentProcesses(h!.repo).filter((a) => a.actorId === st.id);
  const registered = git(h!.repo, "worktree", "list", "--porcelain").includes(`worktree ${join(h!.repo, ".troupe", "worktrees", name)}\n`);
  const branch = git(h!.repo, "branch", "--list", `troupe/${name}`).trim() !== "";
  const where = `${name} in ${full(st)}`;
  if (st.state === "working") {
    expect(agents.map((a) => a.pid), where).toEqual([st.pid]);
    expect(isProcessAlive(st.pid!), where).toBe(true);
  } else {
    expect(agents, where).toEqual([]);
    expect(st.pid, where).toBeNull();
  }
  expect(registered, `${where}: worktree registered`).toBe(st.state !== "destroyed");
  expect(branch, `${where}: branch`).toBe(st.state !== "destroyed");
  // DESIGN §7's invariants hold for the whole workspace once nothing is mid-way (a backoff is)
  if (all.every((x) => x.state !== "booting" && x.state !== "destroying")) expect(await invariantViolations(h!.repo, h!.supervisor)).toEqual([]);
  return st;
}

/** Sends input to a builder's terminal, as `troupe attach` would. */
async function type(name: string, text: string): Promise<void> {
  const { id } = await h!.supervisor.get(name);
  const client = await connectPtyHost(workspaceLayout(h!.repo).ptySocketPath(id));
  client.write(text);
  client.close();
}

interface Scenario {
  /** What a user would call it. */
  what: string;
  /** The chart's transitions it must take. */
  covers: Transition[];
  run(): Promise<void>;
}

const NO_BACKOFF_END = { backoffInitialMs: 120_000, backoffMaxMs: 120_000 };

const scenarios: Scenario[] = [
  {
    what: "spawn: provisioned, started, working",
    covers: [edge("booting.provisioning", "PROVISIONED", "booting.starting"), edge("booting.starting", "STARTED", "working")],
    async run() {
      await h!.supervisor.spawn({ name: "plain", cmd: agent("--hang") });
      await expectWorld("plain", "working.active");
    },
  },
  {
    what: "output keeps an active agent active (no state change, activity recorded)",
    covers: [edge("working.active", "OUTPUT", null)],
    async run() {
      await h!.supervisor.spawn({ name: "talker", cmd: agent("--echo") });
      const before = (await h!.supervisor.get("talker")).lastActivityAt;
      await type("talker", "hello\r");
      await h!.waitForOutput("talker", /ECHO:hello/);
      await waitFor(async () => (await h!.supervisor.get("talker")).lastActivityAt !== before, "activity recorded");
      expect(h!.transitions("talker")).toEqual(["booting.provisioning", "booting.starting", "working.active"]);
      await expectWorld("talker", "working.active");
    },
  },
  {
    what: "a silent agent stalls; output brings it back",
    covers: [edge("working.active", "STALL_CHECK", "working.stalled"), edge("working.stalled", "OUTPUT", "working.active")],
    async run() {
      await h!.supervisor.spawn({ name: "quiet", cmd: agent("--echo"), policy: { stallMs: 300, zombieMs: 120_000 } });
      await expectWorld("quiet", "working.stalled");
      await type("quiet", "wake\r");
      await h!.waitForOutput("quiet", /ECHO:wake/);
      await expectWorld("quiet", "working.active");
    },
  },
  {
    what: "a hung agent is killed and tombstoned as a zombie",
    covers: [edge("working.stalled", "STALL_KILLED", "zombie")],
    async run() {
      await h!.supervisor.spawn({ name: "hung", cmd: agent("--hang"), policy: { stallMs: 300, zombieMs: 900 } });
      expect((await expectWorld("hung", "zombie")).reason).toBe("stalled");
    },
  },
  {
    what: "kill -9 of a transient agent: backoff, then a new agent",
    covers: [edge("working", "EXITED", "booting.backoff", "restart"), edge("booting.backoff", "BACKOFF_ELAPSED", "booting.starting")],
    async run() {
      const first = await h!.supervisor.spawn({ name: "crash", cmd: agent("--hang") });
      signalProcessTree(first.pid!, "SIGKILL");
      const again = await waitFor(async () => {
        const st = await h!.supervisor.get("crash");
        return st.state === "working" && st.pid !== first.pid ? st : null;
      }, "a new agent");
      expect(again.restarts).toBe(1);
      await expectWorld("crash", "working.active");
    },
  },
  {
    what: "a crash loop beyond the restart intensity ends as a zombie",
    covers: [edge("working", "EXITED", "zombie", "intensity")],
    async run() {
      await h!.supervisor.spawn({ name: "loop", cmd: agent("--ready", "--exit", "1"), policy: { maxRestarts: 1, periodMs: 600_000 } });
      expect((await expectWorld("loop", "zombie")).reason).toBe("intensity");
    },
  },
  {
    what: "a transient agent that exits 0 is completed",
    covers: [edge("working", "EXITED", "completed", "exited")],
    async run() {
      await h!.supervisor.spawn({ name: "finisher", cmd: agent("--ready", "--exit", "0") });
      expect((await expectWorld("finisher", "completed")).reason).toBe("exited");
    },
  },
  {
    what: "a temporary agent that crashes is a zombie; restart brings it back; destroy removes it",
    covers: [edge("working", "EXITED", "zombie"), edge("zombie", "RESTART", "booting.starting"), edge("zombie", "DESTROY", "destroying")],
    async run() {
      const st = await h!.supervisor.spawn({ name: "once", cmd: agent("--hang"), restart: "temporary" });
      signalProcessTree(st.pid!, "SIGKILL");
      expect((await expectWorld("once", "zombie")).reason).toBe("crashed");
      await h!.supervisor.restart("once");
      await expectWorld("once", "working.active");
      signalProcessTree((await h!.supervisor.get("once")).pid!, "SIGKILL");
      await expectWorld("once", "zombie");
      await h!.supervisor.destroy("once");
      await expectWorld("once", "destroyed");
    },
  },
  {
    what: "worker_done from the agent completes it",
    covers: [edge("working", "DONE", "completed")],
    async run() {
      await h!.supervisor.spawn({ name: "reporter", cmd: agent("--env", "TROUPE_TOKEN", "--hang") });
      const token = (await h!.waitForOutput("reporter", /ENV TROUPE_TOKEN=(\S+)/))[1]!;
      await h!.supervisor.send({ to: "operator", type: "worker_done", body: "done" }, { token });
      expect((await expectWorld("reporter", "completed")).reason).toBe("worker_done");
    },
  },
  {
    what: "stop completes a working builder; restart brings it back; destroy of a completed one",
    covers: [edge("working", "STOPPED", "completed"), edge("completed", "RESTART", "booting.starting"), edge("completed", "DESTROY", "destroying")],
    async run() {
      await h!.supervisor.spawn({ name: "stoppable", cmd: agent("--hang") });
      await h!.supervisor.stop("stoppable");
      expect((await expectWorld("stoppable", "completed")).reason).toBe("stopped");
      await h!.supervisor.restart("stoppable");
      await expectWorld("stoppable", "working.active");
      await h!.supervisor.stop("stoppable");
      await h!.supervisor.destroy("stoppable");
      await expectWorld("stoppable", "destroyed");
    },
  },
  {
    what: "destroy of a working builder: stop the agent, remove the worktree, tombstone",
    covers: [edge("working", "DESTROY", "destroying"), edge("destroying.stopping", "PROCESS_GONE", "destroying.removingWorktree"), edge("destroying.removingWorktree", "WORKTREE_REMOVED", "destroyed")],
    async run() {
      await h!.supervisor.spawn({ name: "doomed", cmd: agent("--hang") });
      await h!.supervisor.destroy("doomed", { force: true });
      expect((await expectWorld("doomed", "destroyed")).reason).toBe("destroyed");
    },
  },
  {
    what: "stop and destroy during a restart's backoff",
    covers: [edge("booting.backoff", "STOPPED", "zombie"), edge("booting", "DESTROY", "destroying")],
    async run() {
      for (const name of ["waiting", "waiting2"]) {
        const st = await h!.supervisor.spawn({ name, cmd: agent("--hang"), policy: NO_BACKOFF_END });
        signalProcessTree(st.pid!, "SIGKILL");
        await expectWorld(name, "booting.backoff");
      }
      expect((await h!.supervisor.stop("waiting")).state).toBe("zombie");
      await expectWorld("waiting", "zombie");
      await h!.supervisor.destroy("waiting2");
      await expectWorld("waiting2", "destroyed");
    },
  },
  {
    what: "an agent whose program is gone fails to start again: backoff, then a zombie",
    covers: [edge("booting.starting", "START_FAILED", "booting.backoff", "restart"), edge("booting.starting", "START_FAILED", "zombie")],
    async run() {
      // The agent runs through a link to node; removing the link makes every later start fail.
      const link = join(h!.repo, ".troupe", "agent-node");
      symlinkSync(process.execPath, link);
      const st = await h!.supervisor.spawn({ name: "vanishing", cmd: [link, ...agent("--hang").slice(1)], policy: { maxRestarts: 2, periodMs: 600_000 } });
      rmSync(link);
      signalProcessTree(st.pid!, "SIGKILL");
      expect((await expectWorld("vanishing", "zombie")).reason).toBe("start_failed");
    },
  },
  {
    what: "one_for_all: a sibling's crash restarts the others",
    covers: [edge("working", "SIBLING_RESTART", "booting.starting")],
    async run() {
      await h!.supervisor.spawn({ name: "lead", cmd: agent("--hang"), strategy: "one_for_all" });
      const a = await h!.supervisor.spawn({ name: "a", cmd: agent("--hang"), parent: "lead" });
      const b = await h!.supervisor.spawn({ name: "b", cmd: agent("--hang"), parent: "lead" });
      signalProcessTree(b.pid!, "SIGKILL");
      await waitFor(async () => (await h!.supervisor.get("a")).pid !== a.pid && (await h!.supervisor.get("a")).state === "working", "a restarted");
      await expectWorld("a", "working.active");
      await expectWorld("b", "working.active");
    },
  },
  {
    what: "adopt: a live agent whose row was lost is registered without provisioning",
    covers: [edge("booting.provisioning", null, "booting.starting")],
    async run() {
      const st = await h!.supervisor.spawn({ name: "orphan", cmd: agent("--hang") });
      await h!.supervisor.close();
      const store = await openStore({ dir: workspaceLayout(h!.repo).stateDir });
      await store.write((tx) => tx.deleteActor(st.id));
      await store.close();
      h!.events.length = 0;
      await h!.open(FAST);
      const { adopted } = await h!.supervisor.adopt();
      expect(adopted.map((x: { name: string }) => x.name)).toEqual(["orphan"]);
      expect((await expectWorld("orphan", "working.active")).pid).toBe(st.pid);
      const history = await h!.supervisor.history("orphan");
      expect(history[0]).toMatchObject({ from: "(none)", to: "booting.starting" });
      expect(history.map((x) => x.event)).not.toContain("PROVISIONED");
    },
  },
];

/**
 * Legal in the chart but never taken by the supervisor, each with what
 * happens instead (checked below).
 */
const notTaken = new Map<Transition, string>([
  [edge("booting.provisioning", "START_FAILED", "booting.backoff", "restart"), "a first spawn that cannot make its worktree is rolled back"],
  [edge("booting.provisioning", "START_FAILED", "zombie"), "a first spawn that cannot make its worktree is rolled back"],
]);

describe("the builder chart, transition by transition, on a real supervisor", () => {
  it("every transition of the chart has a scenario (or says why the supervisor never takes it)", () => {
    const covered = new Set([...scenarios.flatMap((s) => s.covers), ...notTaken.keys()]);
    expect(chart.transitions.filter((t) => !covered.has(t)).map(label)).toEqual([]);
  });

  it.each(scenarios.map((s) => [s.what, s] as const))("%s", async (_what, scenario) => {
    h = await Harness.start(FAST);
    await scenario.run();
    const names = new Set(h.events.filter((e) => e.type === "transition").map((e) => e.name));
    for (const t of scenario.covers) {
      if (t.targets.length === 0 || t.event === null) continue; // checked by the scenario itself: no transition is recorded
      expect([...names].some((name) => took(name, t)), label(t)).toBe(true);
    }
  });

  it("instead of START_FAILED in provisioning: a spawn whose worktree cannot be made leaves nothing behind", async () => {
    h = await Harness.start(FAST);
    await expect(h.supervisor.spawn({ name: "nobase", cmd: agent("--hang"), base: "no-such-ref" })).rejects.toThrow();
    expect(await h.supervisor.status({ all: true })).toEqual([]);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
    expect(git(h.repo, "worktree", "list", "--porcelain")).not.toContain(".troupe");
    expect(agentProcesses(h.repo)).toEqual([]);
    expect(h.events.filter((e) => e.type === "transition" && e.event === "START_FAILED")).toEqual([]);
  });
});
