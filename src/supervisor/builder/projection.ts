/**
 * The row as a projection of the chart (DESIGN §3: the persisted snapshot is
 * the truth). Every field the chart knows — life state, restarts, activity,
 * the live agent process — is computed here from the snapshot on every
 * transition, so no caller ever writes a process field by hand.
 */
import { BUILDER_MACHINE_VERSION, lifeStateOf, type AgentProcess, type BuilderContext } from "../../machines/builder.js";
import type { BuilderStatus } from "../../shared/contract.js";
import type { ActorRow, LifeState } from "../../storage/types.js";

/** What a transition writes to the row besides the runtime's own artifacts. */
export type RowProjection = Pick<
  ActorRow,
  "state" | "substate" | "snapshot" | "machineVersion" | "restarts" | "restartTimes" | "lastActivityAt" | "pty" | "pid" | "pidStartTime" | "hostPid" | "hostStartTime"
>;

/** The fields the runtime itself records (write-ahead intent, artifacts, the spec); never chart state. */
export type RowArtifacts = Partial<Pick<ActorRow, "intent" | "worktree" | "branch" | "ptySocket" | "spec">>;

export function projectRow(snapshot: { value: Parameters<typeof lifeStateOf>[0]["value"]; context: BuilderContext }, persisted: unknown): RowProjection {
  const { state, substate } = lifeStateOf(snapshot);
  const ctx = snapshot.context;
  return {
    state,
    substate,
    snapshot: persisted,
    machineVersion: BUILDER_MACHINE_VERSION,
    restarts: ctx.restarts,
    restartTimes: [...ctx.restartTimes],
    lastActivityAt: ctx.lastActivityAt,
    pty: ctx.pty,
    ...processFields(ctx.process),
  };
}

export function processFields(process: AgentProcess | null): Pick<ActorRow, "pid" | "pidStartTime" | "hostPid" | "hostStartTime"> {
  return { pid: process?.pid ?? null, pidStartTime: process?.pidStartTime ?? null, hostPid: process?.hostPid ?? null, hostStartTime: process?.hostStartTime ?? null };
}

/**
 * A snapshot persisted before the chart held `process` restores with the
 * process its row recorded, where an agent could still be running.
 */
export function withProcessFromRow(row: ActorRow): unknown {
  const snapshot = row.snapshot as { context?: Partial<BuilderContext> } | null;
  if (!snapshot?.context || "process" in snapshot.context) return snapshot;
  const mayRun = row.state === "working" || (row.state === "destroying" && row.substate === "stopping");
  const process = mayRun && row.pid ? { pid: row.pid, pidStartTime: row.pidStartTime, hostPid: row.hostPid, hostStartTime: row.hostStartTime } : null;
  return { ...snapshot, context: { ...snapshot.context, process } };
}

type StatusContext = Pick<Partial<BuilderContext>, "reason" | "lastExit"> | null;

/** One builder as `status()` and `troupe status --json` show it (DESIGN §9), from its row and its chart's context. */
export function statusOf(row: ActorRow, ctx: StatusContext = contextOf(row), lastOutputAt = 0): BuilderStatus {
  const spec = row.spec;
  const activity = Math.max(row.lastActivityAt ?? 0, lastOutputAt);
  const exit = ctx?.lastExit ?? null;
  return {
    name: row.name,
    id: row.id,
    role: row.role,
    parent: row.parent,
    state: row.state,
    substate: row.substate,
    pid: row.state === "working" ? row.pid : null,
    pty: row.pty,
    worktree: row.worktree,
    branch: row.branch,
    restarts: row.restarts,
    createdAt: new Date(row.createdAt).toISOString(),
    lastActivityAt: activity > 0 ? new Date(activity).toISOString() : null,
    restartType: spec.restart ?? "transient",
    agent: spec.agent ?? "shell",
    command: spec.cmd ?? [],
    reason: ctx?.reason ?? null,
    exit: exit ? { code: exit.code, signal: exit.signal, at: new Date(exit.at).toISOString() } : null,
    ptyError: spec.ptyError ?? null,
    destroyedAt: row.destroyedAt ? new Date(row.destroyedAt).toISOString() : null,
  };
}

/** The chart context persisted with a row (for builders without a live runtime: tombstones). */
export function contextOf(row: ActorRow): StatusContext {
  return (row.snapshot as { context?: StatusContext } | null)?.context ?? null;
}

/** "state.substate", as history and logs write it. */
export function lifeLabel(life: { state: LifeState; substate: string | null }): string {
  return life.substate ? `${life.state}.${life.substate}` : life.state;
}
