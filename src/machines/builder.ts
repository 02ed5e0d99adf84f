/**
 * The builder statechart (DESIGN §3): the life of one agent in one worktree.
 *
 * Pure by construction: no IO, no clock, no randomness, no timers (`after`),
 * no invoked or spawned actors. Every time arrives in an event as `at` (epoch
 * ms) and every random draw as `jitter` ∈ [0, 1). Deadlines are kept as
 * absolute times in context, so a persisted snapshot carries them and the
 * supervisor re-arms its own timers from `nextDeadline` after a restore
 * (XState does not persist delayed events).
 *
 * An event the current state does not accept is not handled at all:
 * `snapshot.can(event)` is false and sending it leaves the snapshot as it
 * was. The supervisor relies on that to refuse illegal moves.
 */
import { assertEvent, assign, setup, type SnapshotFrom, type StateValue } from "xstate";
import {
  backoffDelay,
  exitOutcome,
  isAbnormalExit,
  resolvePolicy,
  restartsInWindow,
  type BuilderPolicy,
  type ExitOutcome,
  type RestartType,
} from "./policy.js";

export {
  DEFAULT_POLICY,
  RESTART_TYPES,
  backoffDelay,
  exitOutcome,
  isAbnormalExit,
  policyProblems,
  resolvePolicy,
  restartsInWindow,
  wantsRestart,
  type BuilderPolicy,
  type ExitOutcome,
  type RestartType,
} from "./policy.js";

/**
 * Bumped whenever a persisted snapshot of an older version would not restore
 * as the same state. (`context.process` came later without a bump: a snapshot
 * without it is given it from its row when restored, and restores the same.)
 */
export const BUILDER_MACHINE_VERSION = 1;

export type LifeState = "booting" | "working" | "completed" | "zombie" | "destroying" | "destroyed";

export const LIFE_STATES: readonly LifeState[] = ["booting", "working", "completed", "zombie", "destroying", "destroyed"];

/** Absolute deadlines (epoch ms); null when not armed. */
export interface BuilderDeadlines {
  /** booting.backoff: the restart may proceed from this time. */
  restartAt: number | null;
  /** working.active: no output until this time means stalled. */
  stallAt: number | null;
  /** working.*: no output until this time means the agent is killed and the builder is a zombie. */
  zombieAt: number | null;
}

/**
 * The agent process and the pty host that owns it, as the host confirmed them
 * (start times tell a live process from a reused pid). The row's process
 * fields are this, projected; null whenever no agent of this builder can run.
 */
export interface AgentProcess {
  pid: number;
  pidStartTime: number | null;
  hostPid: number | null;
  hostStartTime: number | null;
}

export interface BuilderExit {
  code: number | null;
  signal: string | null;
  at: number;
}

export interface BuilderContext {
  id: string;
  name: string;
  restartType: RestartType;
  policy: BuilderPolicy;
  /** Every restart ever (automatic, explicit, or with a sibling); informational. */
  restarts: number;
  /** Times of automatic restarts still inside the intensity window (older ones are pruned). */
  restartTimes: number[];
  /** Exponent of the next backoff delay. */
  backoffStep: number;
  startedAt: number | null;
  lastActivityAt: number | null;
  deadlines: BuilderDeadlines;
  lastExit: BuilderExit | null;
  /** Why the builder is completed, zombie or destroying; null while booting or working. */
  reason: string | null;
  /** The agent said `worker_done` during its current run. */
  doneReported: boolean;
  worktree: string | null;
  branch: string | null;
  /** The agent's pid as last reported by STARTED (kept after exit, for diagnostics). */
  pid: number | null;
  /**
   * The agent that may be running: set by STARTED, forgotten on entering any
   * state in which the supervisor has made sure it is gone (booting, completed,
   * zombie, destroying.removingWorktree). Kept through destroying.stopping,
   * whose work is to end it.
   */
  process: AgentProcess | null;
  pty: boolean | null;
  /** The last start failure; cleared by a successful start or an explicit restart. */
  error: string | null;
  /** Addition: `at` of the input (when the builder was created). */
  createdAt: number;
  /**
   * Addition: the worktree existed when the machine was created
   * (`input.initial === "starting"`), so `booting.provisioning` is skipped.
   * Read only by the eventless move out of `provisioning` at creation.
   */
  skipProvisioning: boolean;
}

export interface BuilderInput {
  id: string;
  name: string;
  restartType: RestartType;
  policy?: Partial<BuilderPolicy>;
  at: number;
  /** "starting" when the worktree already exists (e.g. re-creating a builder around it). */
  initial?: "provisioning" | "starting";
}

export type BuilderEvent =
  | { type: "PROVISIONED"; at: number; worktree: string; branch: string }
  | { type: "STARTED"; at: number; pid: number; pty: boolean; pidStartTime?: number | null; hostPid?: number | null; hostStartTime?: number | null }
  | { type: "START_FAILED"; at: number; error: string; jitter: number }
  | { type: "OUTPUT"; at: number }
  | { type: "STALL_CHECK"; at: number }
  | { type: "STALL_KILLED"; at: number }
  | { type: "EXITED"; at: number; code: number | null; signal: string | null; jitter: number }
  | { type: "BACKOFF_ELAPSED"; at: number }
  | { type: "DONE"; at: number }
  | { type: "STOPPED"; at: number }
  | { type: "RESTART"; at: number }
  /** Addition: restarted because a sibling died under a one_for_all / rest_for_one supervisor. */
  | { type: "SIBLING_RESTART"; at: number; cause: string }
  | { type: "DESTROY"; at: number }
  | { type: "PROCESS_GONE"; at: number }
  | { type: "WORKTREE_REMOVED"; at: number };

export type BuilderEventType = BuilderEvent["type"];

export const BUILDER_EVENT_TYPES: readonly BuilderEventType[] = [
  "PROVISIONED",
  "STARTED",
  "START_FAILED",
  "OUTPUT",
  "STALL_CHECK",
  "STALL_KILLED",
  "EXITED",
  "BACKOFF_ELAPSED",
  "DONE",
  "STOPPED",
  "RESTART",
  "SIBLING_RESTART",
  "DESTROY",
  "PROCESS_GONE",
  "WORKTREE_REMOVED",
];

const NO_DEADLINES: BuilderDeadlines = Object.freeze({ restartAt: null, stallAt: null, zombieAt: null });

/** The outcome of an EXITED or START_FAILED event in `context` (a failed start counts as an abnormal exit). */
function outcomeOf(context: BuilderContext, event: BuilderEvent): ExitOutcome | null {
  switch (event.type) {
    case "EXITED":
      return exitOutcome(context, { at: event.at, abnormal: isAbnormalExit(event.code, event.signal) });
    case "START_FAILED":
      return exitOutcome(context, { at: event.at, abnormal: true });
    default:
      return null;
  }
}

/** `destroy` is legal from every state but the tombstone and the teardown itself. */
const destroyOnRequest = { target: "#builder.destroying", actions: { type: "settle", params: { reason: "destroyed" } } } as const;

/** completed and zombie differ only in why: nothing runs, and only a person's restart or destroy moves them. */
const finished = {
  entry: "forgetProcess",
  on: {
    RESTART: { target: "#builder.booting.starting", actions: "resetForRestart" },
    DESTROY: destroyOnRequest,
  },
} as const;

export const builderMachine = setup({
  types: {
    context: {} as BuilderContext,
    events: {} as BuilderEvent,
    input: {} as BuilderInput,
  },
  guards: {
    skipProvisioning: ({ context }) => context.skipProvisioning,
    /** Parameterised so the chart reads as data: `{ type: "outcomeIs", params: { outcome: "restart" } }`. */
    outcomeIs: ({ context, event }, params: { outcome: ExitOutcome }) => outcomeOf(context, event) === params.outcome,
    // A check that arrives early changes nothing (the supervisor re-arms and asks again).
    stallDue: ({ context, event }) => context.deadlines.stallAt !== null && event.at >= context.deadlines.stallAt,
    restartDue: ({ context, event }) => context.deadlines.restartAt === null || event.at >= context.deadlines.restartAt,
  },
  actions: {
    recordWorktree: assign(({ event }) => {
      assertEvent(event, "PROVISIONED");
      return { worktree: event.worktree, branch: event.branch };
    }),
    recordStart: assign(({ context, event }) => {
      assertEvent(event, "STARTED");
      return {
        pid: event.pid,
        process: { pid: event.pid, pidStartTime: event.pidStartTime ?? null, hostPid: event.hostPid ?? null, hostStartTime: event.hostStartTime ?? null },
        pty: event.pty,
        startedAt: event.at,
        lastActivityAt: event.at,
        deadlines: { restartAt: null, stallAt: event.at + context.policy.stallMs, zombieAt: event.at + context.policy.zombieMs },
        doneReported: false,
        error: null,
        reason: null,
      };
    }),
    recordStartFailure: assign(({ event }) => {
      assertEvent(event, "START_FAILED");
      return { error: event.error };
    }),
    recordExit: assign(({ event }) => {
      assertEvent(event, "EXITED");
      return { lastExit: { code: event.code, signal: event.signal, at: event.at } };
    }),
    /** Counts an automatic restart and arms `restartAt` (EXITED or START_FAILED). */
    scheduleRestart: assign(({ context, event }) => {
      assertEvent(event, ["EXITED", "START_FAILED"]);
      // Only an exit after a stable run starts the backoff over; a failed start never ran.
      const stable = event.type === "EXITED" && context.startedAt !== null && event.at - context.startedAt >= context.policy.stableMs;
      const step = stable ? 0 : context.backoffStep;
      return {
        restarts: context.restarts + 1,
        // Pruned so the persisted context stays bounded by maxRestarts.
        restartTimes: [...restartsInWindow(context.restartTimes, event.at, context.policy.periodMs), event.at],
        backoffStep: step + 1,
        deadlines: { ...NO_DEADLINES, restartAt: event.at + backoffDelay(context.policy, step, event.jitter) },
        reason: null,
      };
    }),
    noteActivity: assign(({ context, event }) => ({
      lastActivityAt: event.at,
      deadlines: { restartAt: null, stallAt: event.at + context.policy.stallMs, zombieAt: event.at + context.policy.zombieMs },
    })),
    /** Enters a state that waits for nobody's clock: records why and disarms every deadline. */
    settle: assign((_, params: { reason: string }) => ({ reason: params.reason, deadlines: { ...NO_DEADLINES } })),
    markDone: assign({ doneReported: true }),
    forgetProcess: assign({ process: null }),
    /** An explicit restart forgives the past: intensity and backoff start over. */
    resetForRestart: assign(({ context }) => ({
      restarts: context.restarts + 1,
      restartTimes: [],
      backoffStep: 0,
      reason: null,
      error: null,
      deadlines: { ...NO_DEADLINES },
    })),
    /**
     * A restart ordered by the supervisor's strategy, not caused by this
     * builder: counted in `restarts` but not against its intensity (OTP
     * counts the failing child's restart once, at the supervisor).
     */
    joinSiblingRestart: assign(({ context }) => ({
      restarts: context.restarts + 1,
      reason: null,
      deadlines: { ...NO_DEADLINES },
    })),
  },
}).createMachine({
  id: "builder",
  context: ({ input }) => ({
    id: input.id,
    name: input.name,
    restartType: input.restartType,
    policy: resolvePolicy(input.policy),
    restarts: 0,
    restartTimes: [],
    backoffStep: 0,
    startedAt: null,
    lastActivityAt: null,
    deadlines: { ...NO_DEADLINES },
    lastExit: null,
    reason: null,
    doneReported: false,
    worktree: null,
    branch: null,
    pid: null,
    process: null,
    pty: null,
    error: null,
    createdAt: input.at,
    skipProvisioning: input.initial === "starting",
  }),
  initial: "booting",
  states: {
    booting: {
      description: "Getting a worktree and an agent process.",
      initial: "provisioning",
      // Entered only once the previous agent (if any) is gone.
      entry: "forgetProcess",
      on: {
        DESTROY: destroyOnRequest,
      },
      states: {
        provisioning: {
          description: "Creating the git worktree.",
          // Only taken at creation: nothing else enters provisioning.
          always: { guard: "skipProvisioning", target: "starting" },
          on: {
            PROVISIONED: { target: "starting", actions: "recordWorktree" },
            START_FAILED: [
              { guard: { type: "outcomeIs", params: { outcome: "restart" } }, target: "backoff", actions: ["recordStartFailure", "scheduleRestart"] },
              { target: "#builder.zombie", actions: ["recordStartFailure", { type: "settle", params: { reason: "start_failed" } }] },
            ],
          },
        },
        starting: {
          description: "Launching the pty host and the agent.",
          on: {
            STARTED: { target: "#builder.working", actions: "recordStart" },
            START_FAILED: [
              { guard: { type: "outcomeIs", params: { outcome: "restart" } }, target: "backoff", actions: ["recordStartFailure", "scheduleRestart"] },
              { target: "#builder.zombie", actions: ["recordStartFailure", { type: "settle", params: { reason: "start_failed" } }] },
            ],
          },
        },
        backoff: {
          description: "Waiting until deadlines.restartAt before the next start.",
          on: {
            BACKOFF_ELAPSED: { guard: "restartDue", target: "starting" },
            // A stop cancels the pending restart; nothing runs, so it is not "completed".
            STOPPED: { target: "#builder.zombie", actions: { type: "settle", params: { reason: "stopped" } } },
          },
        },
      },
    },
    working: {
      description: "The agent runs; output keeps it active.",
      initial: "active",
      on: {
        EXITED: [
          { guard: { type: "outcomeIs", params: { outcome: "restart" } }, target: "#builder.booting.backoff", actions: ["recordExit", "scheduleRestart"] },
          { guard: { type: "outcomeIs", params: { outcome: "intensity" } }, target: "#builder.zombie", actions: ["recordExit", { type: "settle", params: { reason: "intensity" } }] },
          { guard: { type: "outcomeIs", params: { outcome: "exited" } }, target: "#builder.completed", actions: ["recordExit", { type: "settle", params: { reason: "exited" } }] },
          { target: "#builder.zombie", actions: ["recordExit", { type: "settle", params: { reason: "crashed" } }] },
        ],
        DONE: { target: "#builder.completed", actions: ["markDone", { type: "settle", params: { reason: "worker_done" } }] },
        STOPPED: { target: "#builder.completed", actions: { type: "settle", params: { reason: "stopped" } } },
        SIBLING_RESTART: { target: "#builder.booting.starting", actions: "joinSiblingRestart" },
        DESTROY: destroyOnRequest,
      },
      states: {
        active: {
          on: {
            OUTPUT: { actions: "noteActivity" },
            STALL_CHECK: { guard: "stallDue", target: "stalled" },
          },
        },
        stalled: {
          description: "No output for stallMs; killed at deadlines.zombieAt unless output resumes.",
          on: {
            OUTPUT: { target: "active", actions: "noteActivity" },
            STALL_KILLED: { target: "#builder.zombie", actions: { type: "settle", params: { reason: "stalled" } } },
          },
        },
      },
    },
    completed: { description: "Finished: worker_done, a clean exit, or stopped.", ...finished },
    zombie: { description: "Dead and not restarted automatically; context.reason says why.", ...finished },
    destroying: {
      // Persisted, so a crash mid-teardown resumes it instead of leaving half a builder.
      description: "Tearing down: process tree, then worktree.",
      initial: "stopping",
      states: {
        stopping: { on: { PROCESS_GONE: "removingWorktree" } },
        removingWorktree: { entry: "forgetProcess", on: { WORKTREE_REMOVED: "#builder.destroyed" } },
      },
    },
    destroyed: {
      description: "Tombstone: nothing is left but the row.",
      type: "final",
    },
  },
});

export type BuilderMachine = typeof builderMachine;
export type BuilderSnapshot = SnapshotFrom<typeof builderMachine>;

/** Top-level state and innermost substate (null for atomic top-level states). */
export function lifeStateOf(snapshot: { readonly value: StateValue }): { state: LifeState; substate: string | null } {
  const value = snapshot.value;
  if (typeof value === "string") return { state: asLifeState(value), substate: null };
  const entries = Object.entries(value);
  const first = entries[0];
  if (entries.length !== 1 || !first) throw new Error(`builder: unexpected state value ${JSON.stringify(value)}`);
  const [state, child] = first;
  if (typeof child !== "string") throw new Error(`builder: unexpected state value ${JSON.stringify(value)}`);
  return { state: asLifeState(state), substate: child };
}

function asLifeState(value: string): LifeState {
  if ((LIFE_STATES as readonly string[]).includes(value)) return value as LifeState;
  throw new Error(`builder: unknown life state "${value}"`);
}

export type BuilderDeadlineKind = "restart" | "stall" | "zombie";

/**
 * The earliest deadline the current state waits for, or null when it waits
 * for none (the supervisor arms one timer from it, also after a restore).
 * Only deadlines meaningful in the state count: a stalled builder waits for
 * `zombieAt`, not for the `stallAt` it already passed.
 */
export function nextDeadline(snapshot: {
  readonly value: StateValue;
  readonly context: Pick<BuilderContext, "deadlines">;
}): { kind: BuilderDeadlineKind; at: number } | null {
  const { state, substate } = lifeStateOf(snapshot);
  const { restartAt, stallAt, zombieAt } = snapshot.context.deadlines;
  const armed: Array<{ kind: BuilderDeadlineKind; at: number | null }> =
    state === "booting" && substate === "backoff"
      ? [{ kind: "restart", at: restartAt }]
      : state === "working" && substate === "active"
        ? [{ kind: "stall", at: stallAt }, { kind: "zombie", at: zombieAt }]
        : state === "working" && substate === "stalled"
          ? [{ kind: "zombie", at: zombieAt }]
          : [];
  let earliest: { kind: BuilderDeadlineKind; at: number } | null = null;
  for (const { kind, at } of armed) {
    // Strictly earlier, so on a tie the stall check comes before the kill.
    if (at !== null && (earliest === null || at < earliest.at)) earliest = { kind, at };
  }
  return earliest;
}
