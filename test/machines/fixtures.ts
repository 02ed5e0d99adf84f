/**
 * Shared helpers for the builder statechart tests: pure stepping (no actor,
 * no clock) and a persist/restore round trip like the supervisor's.
 */
import { createActor, initialTransition, transition } from "xstate";
import {
  builderMachine,
  lifeStateOf,
  type BuilderEvent,
  type BuilderEventType,
  type BuilderInput,
  type BuilderSnapshot,
  type LifeState,
} from "../../src/machines/builder.js";

export const T0 = 1_700_000_000_000;

export function input(overrides: Partial<BuilderInput> = {}): BuilderInput {
  return { id: "b1", name: "alice", restartType: "transient", at: T0, ...overrides };
}

export function boot(overrides: Partial<BuilderInput> = {}): BuilderSnapshot {
  return initialTransition(builderMachine, input(overrides))[0];
}

/** One event, purely; returns the next snapshot (the same object when not handled). */
export function step(snapshot: BuilderSnapshot, event: BuilderEvent): BuilderSnapshot {
  return transition(builderMachine, snapshot, event)[0];
}

/** Sends events in order, failing loudly on one the machine refuses. */
export function drive(snapshot: BuilderSnapshot, events: readonly BuilderEvent[]): BuilderSnapshot {
  let current = snapshot;
  for (const event of events) {
    if (!current.can(event)) throw new Error(`refused ${event.type} in ${where(current)}`);
    current = step(current, event);
  }
  return current;
}

export function where(snapshot: { value: BuilderSnapshot["value"] }): string {
  const { state, substate } = lifeStateOf(snapshot);
  return substate ? `${state}.${substate}` : state;
}

/** Persist through JSON (as storage does) and restore into a fresh actor. */
export function roundTrip(snapshot: BuilderSnapshot, restoreInput: BuilderInput = input()): BuilderSnapshot {
  const actor = createActor(builderMachine, { snapshot, input: restoreInput }).start();
  const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as unknown;
  actor.stop();
  const restored = createActor(builderMachine, { snapshot: persisted as BuilderSnapshot, input: restoreInput }).start();
  const result = restored.getSnapshot();
  restored.stop();
  return result;
}

/** A builder that provisioned and started at `at`. */
export function working(overrides: Partial<BuilderInput> = {}, at = T0): BuilderSnapshot {
  return drive(boot(overrides), [
    { type: "PROVISIONED", at, worktree: "/repo/.troupe/worktrees/alice", branch: "troupe/alice" },
    { type: "STARTED", at, pid: 4242, pty: true },
  ]);
}

/**
 * Which event types each atomic state accepts, straight from the contract
 * (DESIGN §3 plus the event list of the builder brief). Guarded events are
 * listed: they are legal moves that may still be declined for their `at`.
 */
export const LEGAL_EVENTS: Record<string, readonly BuilderEventType[]> = {
  "booting.provisioning": ["PROVISIONED", "START_FAILED", "DESTROY"],
  "booting.starting": ["STARTED", "START_FAILED", "DESTROY"],
  "booting.backoff": ["BACKOFF_ELAPSED", "STOPPED", "DESTROY"],
  "working.active": ["OUTPUT", "STALL_CHECK", "EXITED", "DONE", "STOPPED", "SIBLING_RESTART", "DESTROY"],
  "working.stalled": ["OUTPUT", "STALL_KILLED", "EXITED", "DONE", "STOPPED", "SIBLING_RESTART", "DESTROY"],
  completed: ["RESTART", "DESTROY"],
  zombie: ["RESTART", "DESTROY"],
  "destroying.stopping": ["PROCESS_GONE"],
  "destroying.removingWorktree": ["WORKTREE_REMOVED"],
  destroyed: [],
};

/** DESIGN §3's legal moves between life states (moves inside one life state are substate changes). */
export const LEGAL_MOVES: ReadonlySet<`${LifeState}->${LifeState}`> = new Set([
  "booting->working",
  "booting->zombie",
  "working->completed",
  "working->booting",
  "working->zombie",
  "completed->booting",
  "zombie->booting",
  "booting->destroying",
  "working->destroying",
  "completed->destroying",
  "zombie->destroying",
  "destroying->destroyed",
] as const);

export function isLegalMove(from: LifeState, to: LifeState): boolean {
  return from === to || LEGAL_MOVES.has(`${from}->${to}`);
}
