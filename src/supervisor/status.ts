import type { ActorRow } from "../storage/types.js";
import type { BuilderStatus, RestartType } from "./types.js";

type StatusContext = { reason?: string | null; lastExit?: { code: number | null; signal: string | null; at: number } | null } | null;

/** One builder as `status()` and `troupe status --json` show it (DESIGN §9), from its row and its chart's context. */
export function statusOf(row: ActorRow, ctx: StatusContext, lastOutputAt = 0): BuilderStatus {
  const spec = row.spec as { restart?: RestartType; agent?: string; cmd?: string[]; ptyError?: string | null };
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
