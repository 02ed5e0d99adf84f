/**
 * Model-based tests of the builder lifecycle (DESIGN §13): `xstate/graph`
 * enumerates the machine's paths from sample events; along every path a real
 * actor, persisted and restored before every event as the supervisor does,
 * must follow the model, and every move must be one of DESIGN §3's legal
 * moves. In every reachable state, every event type that is not legal there
 * must be refused (`can()` false) and leave the snapshot untouched.
 */
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { createActor, transition, type Actor } from "xstate";
import { createTestModel, getAdjacencyMap, getShortestPaths, getSimplePaths, type AdjacencyValue, type TraversalOptions } from "xstate/graph";
import {
  BUILDER_EVENT_TYPES,
  RESTART_TYPES,
  builderMachine,
  lifeStateOf,
  type BuilderContext,
  type BuilderEvent,
  type BuilderEventType,
  type BuilderInput,
  type BuilderSnapshot,
  type RestartType,
} from "../../src/machines/builder.js";
import { LEGAL_EVENTS, T0, isLegalMove, where } from "./fixtures.js";

// Small numbers keep the state space small: two automatic restarts fit in the
// window, a third exit exhausts it.
const MODEL_POLICY = { maxRestarts: 2, periodMs: 600_000, backoffInitialMs: 1000, backoffMaxMs: 4000, stallMs: 5000, zombieMs: 20_000 };

/**
 * A plausible "now" for the next event: after the times the context
 * recorded, and never before a pending restart (the stall samples take their
 * own times from the deadlines).
 */
function clock(context: BuilderContext): number {
  return (
    Math.max(
      context.createdAt,
      context.startedAt ?? 0,
      context.lastActivityAt ?? 0,
      context.lastExit?.at ?? 0,
      context.deadlines.restartAt ?? 0,
      ...context.restartTimes,
    ) + 100
  );
}

/** Sample events of `type` for `snapshot`, including ones a guard should decline. */
function samples(snapshot: BuilderSnapshot, type: BuilderEventType): BuilderEvent[] {
  const context = snapshot.context;
  const at = clock(context);
  switch (type) {
    case "PROVISIONED":
      return [{ type, at, worktree: "/repo/.troupe/worktrees/alice", branch: "troupe/alice" }];
    case "STARTED":
      return [{ type, at, pid: 4242, pty: true }];
    case "START_FAILED":
      return [{ type, at, error: "pty host did not answer", jitter: 0.5 }];
    case "OUTPUT":
      return [{ type, at }];
    case "STALL_CHECK": {
      const stallAt = context.deadlines.stallAt ?? at;
      return [
        { type, at: stallAt - 1 },
        { type, at: stallAt },
      ];
    }
    case "STALL_KILLED":
      return [{ type, at: context.deadlines.zombieAt ?? at }];
    case "EXITED":
      return [
        { type, at, code: 0, signal: null, jitter: 0.5 },
        { type, at, code: 1, signal: null, jitter: 0.5 },
        { type, at, code: null, signal: "SIGKILL", jitter: 0.5 },
      ];
    case "BACKOFF_ELAPSED": {
      const restartAt = context.deadlines.restartAt ?? at;
      return [
        { type, at: restartAt - 1 },
        { type, at: restartAt },
      ];
    }
    case "SIBLING_RESTART":
      return [{ type, at, cause: "bob" }];
    case "DONE":
    case "STOPPED":
    case "RESTART":
    case "DESTROY":
    case "PROCESS_GONE":
    case "WORKTREE_REMOVED":
      return [{ type, at }];
  }
}

/** The outgoing transitions of one adjacency-map entry (its keys are branded strings). */
function edges(transitions: AdjacencyValue<BuilderSnapshot, BuilderEvent>["transitions"]): Array<{ event: BuilderEvent; state: BuilderSnapshot }> {
  return Object.values(transitions as Record<string, { event: BuilderEvent; state: BuilderSnapshot }>);
}

const allSamples = (snapshot: BuilderSnapshot) => BUILDER_EVENT_TYPES.flatMap((type) => samples(snapshot, type));

/**
 * The abstraction the traversal works on: times are left out (they only grow),
 * what decides future moves is kept. Finite, because restartTimes and
 * backoffStep are bounded by maxRestarts.
 */
function abstractState(snapshot: BuilderSnapshot): string {
  const { restartTimes, backoffStep, reason, doneReported, error } = snapshot.context;
  return JSON.stringify({ value: snapshot.value, restarts: restartTimes.length, backoffStep, reason, doneReported, error: error !== null });
}

/**
 * Simple paths visit each abstract state at most once, so their number grows
 * exponentially with the abstraction: over the fine one above they do not
 * finish; over the state value alone (the legal-move table's view) they are
 * a few hundred.
 */
function stateValueOnly(snapshot: BuilderSnapshot): string {
  return JSON.stringify(snapshot.value);
}

interface Config {
  restartType: RestartType;
  initial: "provisioning" | "starting";
}

const CONFIGS: Config[] = RESTART_TYPES.flatMap((restartType) =>
  (["provisioning", "starting"] as const).map((initial) => ({ restartType, initial })),
);

function inputFor(config: Config): BuilderInput {
  return { id: "b1", name: "alice", restartType: config.restartType, policy: MODEL_POLICY, at: T0, initial: config.initial };
}

function traversal(
  config: Config,
  serializeState: (snapshot: BuilderSnapshot) => string = abstractState,
): TraversalOptions<BuilderSnapshot, BuilderEvent, BuilderInput> {
  return { input: inputFor(config), events: allSamples, serializeState };
}

const leafOf = (snapshot: BuilderSnapshot) => where(snapshot);

function snapshotData(snapshot: BuilderSnapshot) {
  return { value: snapshot.value, context: snapshot.context, status: snapshot.status };
}

/**
 * The system under test: an actor that is persisted (through JSON) and
 * restored before every event, like the supervisor across a daemon restart.
 */
class Sut {
  private actor: Actor<typeof builderMachine>;

  constructor(private readonly restoreInput: BuilderInput) {
    this.actor = createActor(builderMachine, { input: restoreInput }).start();
  }

  get snapshot(): BuilderSnapshot {
    return this.actor.getSnapshot();
  }

  send(event: BuilderEvent): void {
    const persisted = JSON.parse(JSON.stringify(this.actor.getPersistedSnapshot())) as BuilderSnapshot;
    this.actor.stop();
    this.actor = createActor(builderMachine, { snapshot: persisted, input: this.restoreInput }).start();
    const before = this.actor.getSnapshot();
    expect(before.can(event), `${event.type} in ${where(before)}`).toBe(true);
    expect(LEGAL_EVENTS[where(before)]).toContain(event.type);
    // What the pure machine does from the same snapshot: restoring lost nothing.
    const [expected] = transition(builderMachine, before, event);
    this.actor.send(event);
    const after = this.actor.getSnapshot();
    expect(snapshotData(after)).toEqual(snapshotData(expected));
    const move = `${lifeStateOf(before).state} → ${lifeStateOf(after).state}`;
    expect(isLegalMove(lifeStateOf(before).state, lifeStateOf(after).state), `${move} on ${event.type}`).toBe(true);
  }

  stop(): void {
    this.actor.stop();
  }
}

describe.each(CONFIGS)("builder model: $restartType, starting in booting.$initial", (config) => {
  const model = createTestModel(builderMachine, traversal(config));

  /**
   * Drives a fresh SUT along each path. A path's states are representatives
   * of abstract states (their times come from whichever history reached them
   * first), so the SUT is compared through the same abstraction, and each
   * event is re-sampled from the SUT's own snapshot: the sample at the same
   * index (e.g. "the due STALL_CHECK"), with the SUT's times.
   */
  async function runPaths(
    paths: ReturnType<typeof model.getShortestPaths>,
    serialize: (snapshot: BuilderSnapshot) => string,
  ): Promise<{ steps: number; reached: Set<string> }> {
    // Events were sampled from the first snapshot the traversal met in each
    // abstract state (the adjacency map's entry), which need not be the
    // snapshot a path step carries.
    const adjacency = getAdjacencyMap(builderMachine, traversal(config, serialize));
    const representative = (state: BuilderSnapshot) => adjacency[serialize(state) as keyof typeof adjacency]!.state;
    let steps = 0;
    const reached = new Set<string>();
    for (const path of paths) {
      const sut = new Sut(inputFor(config));
      let modelState: BuilderSnapshot | null = null;
      const check = (state: BuilderSnapshot) => {
        expect(serialize(sut.snapshot)).toBe(serialize(state));
        reached.add(serialize(state));
        modelState = state;
      };
      const execute = (step: { event: BuilderEvent }) => {
        const from = representative(modelState!);
        const index = samples(from, step.event.type).findIndex((sample) => isDeepStrictEqual(sample, step.event));
        expect(index, `${step.event.type} is one of the samples`).toBeGreaterThanOrEqual(0);
        sut.send(samples(sut.snapshot, step.event.type)[index]!);
        steps++;
      };
      await path.test({
        // One key per life state; the default matcher (`state.matches`) picks the one that applies.
        states: { booting: check, working: check, completed: check, zombie: check, destroying: check, destroyed: check },
        events: Object.fromEntries(BUILDER_EVENT_TYPES.map((type) => [type, execute])),
      });
      sut.stop();
    }
    return { steps, reached };
  }

  it("drives a restored actor along every shortest path", async () => {
    // Paths that are prefixes of longer ones are left out (allowDuplicatePaths: false).
    const paths = model.getShortestPaths();
    const { steps, reached } = await runPaths(paths, abstractState);
    const states = Object.keys(getAdjacencyMap(builderMachine, traversal(config)));
    console.log(`[${config.restartType}/${config.initial}] shortest paths: ${paths.length} (${steps} events) reaching ${reached.size} abstract states`);
    // Together they reach every abstract state of the traversal.
    expect([...reached].sort()).toEqual(states.sort());
    expect(paths.length).toBeGreaterThanOrEqual(config.restartType === "temporary" ? 5 : 20);
  });

  it("drives a restored actor along every simple path", async () => {
    // Over the state value alone: a simple path then passes booting.backoff at
    // most once, so intensity never decides, and the model's representatives
    // decide the same way the SUT does.
    const paths = model.getSimplePaths({ serializeState: stateValueOnly });
    const { steps, reached } = await runPaths(paths, stateValueOnly);
    console.log(`[${config.restartType}/${config.initial}] simple paths: ${paths.length} (${steps} events) reaching ${reached.size} state values`);
    // They reach every state value the fine traversal reaches.
    const values = new Set(getShortestPaths(builderMachine, traversal(config)).map((p) => stateValueOnly(p.state)));
    expect([...reached].sort()).toEqual([...values].sort());
    expect(paths.length).toBeGreaterThanOrEqual(values.size);
  });

  it("takes only legal moves, and refuses every other event in every reachable state", () => {
    const adjacency = getAdjacencyMap(builderMachine, traversal(config));
    let refusals = 0;
    for (const { state, transitions } of Object.values(adjacency)) {
      const leaf = leafOf(state);
      const legal = LEGAL_EVENTS[leaf];
      expect(legal, leaf).toBeDefined();
      // Every move the traversal found is a legal one of DESIGN §3.
      for (const { event, state: next } of edges(transitions)) {
        if (next === state) continue; // declined by a guard: nothing happened
        expect(legal).toContain(event.type);
        expect(isLegalMove(lifeStateOf(state).state, lifeStateOf(next).state), `${leaf} → ${leafOf(next)} on ${event.type}`).toBe(true);
      }
      // Every legal event type has a sample that is accepted here…
      for (const type of legal ?? []) {
        expect(samples(state, type).some((event) => state.can(event)), `${type} in ${leaf}`).toBe(true);
      }
      // A deadline event that arrives before its deadline is declined.
      for (const type of ["STALL_CHECK", "BACKOFF_ELAPSED"] as const) {
        const early = samples(state, type)[0]!;
        if (legal?.includes(type)) expect(state.can(early), `early ${type} in ${leaf}`).toBe(false);
      }
      // …and every other one is refused and changes nothing.
      for (const type of BUILDER_EVENT_TYPES.filter((t) => !legal?.includes(t))) {
        for (const event of samples(state, type)) {
          expect(state.can(event), `${type} in ${leaf}`).toBe(false);
          const [next] = transition(builderMachine, state, event);
          expect(snapshotData(next)).toEqual(snapshotData(state));
          refusals++;
        }
      }
    }
    expect(refusals).toBeGreaterThan(0);
  });
});

describe("builder model: coverage over all configurations", () => {
  it("every atomic state is reached and every legal (state, event) pair is taken", () => {
    const reached = new Set<string>();
    const taken = new Set<string>();
    for (const config of CONFIGS) {
      for (const { state, transitions } of Object.values(getAdjacencyMap(builderMachine, traversal(config)))) {
        reached.add(leafOf(state));
        for (const { event, state: next } of edges(transitions)) {
          if (next !== state) taken.add(`${leafOf(state)} ${event.type}`);
        }
      }
    }
    expect([...reached].sort()).toEqual(Object.keys(LEGAL_EVENTS).sort());
    const expected = Object.entries(LEGAL_EVENTS).flatMap(([leaf, types]) => types.map((type) => `${leaf} ${type}`));
    expect([...taken].sort()).toEqual(expected.sort());
  });

  it("simple and shortest paths agree on the reachable state values", () => {
    for (const config of CONFIGS) {
      const ends = (paths: Array<{ state: BuilderSnapshot }>) => new Set(paths.map((p) => stateValueOnly(p.state)));
      const simple = getSimplePaths(builderMachine, traversal(config, stateValueOnly));
      expect(ends(simple)).toEqual(ends(getShortestPaths(builderMachine, traversal(config))));
    }
  });
});
