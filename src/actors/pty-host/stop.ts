/**
 * Stopping the agent as a closing terminal would (DESIGN §5): SIGHUP to its
 * tree first — an interactive shell ignores SIGTERM but ends at once on a
 * hangup — then SIGTERM, then SIGKILL, each after its grace time. On plain
 * pipes there is no terminal to hang up: SIGTERM comes first.
 */
import { signalTree, type ProcessRef } from "../../shared/proc.js";
import { terminateTree, waitForExit, type TerminateOutcome } from "../../shared/terminate.js";

/** How long SIGHUP has before SIGTERM, unless the stop says otherwise. */
export const DEFAULT_HANGUP_TIMEOUT_MS = 1_000;

export interface StopPlan {
  pid: number;
  startTime: number | null;
  /** SIGKILL this long after the first signal. */
  killTimeoutMs: number;
  /** Capped at half of killTimeoutMs, so SIGTERM always has time too. */
  hangupTimeoutMs?: number;
  /** Send SIGHUP first (the agent is on a pty). */
  hangup: boolean;
  /** After SIGKILL, how long to wait for the kernel to report the death. */
  killWaitMs: number;
  /** Settles when the agent exits. */
  exited: Promise<void>;
  /** The tree as known now (read again before each signal by the caller's `refresh`). */
  known: () => ProcessRef[];
  /** Reads the tree again and adds newcomers to `known`. */
  refresh: () => void;
  onKill: () => void;
}

export async function stopAgent(plan: StopPlan): Promise<TerminateOutcome> {
  let spent = 0;
  if (plan.hangup) {
    const hangupMs = Math.min(plan.hangupTimeoutMs ?? DEFAULT_HANGUP_TIMEOUT_MS, Math.floor(plan.killTimeoutMs / 2));
    signalTree(plan.known(), "SIGHUP");
    if (await waitForExit({ pid: plan.pid, start: plan.startTime }, hangupMs, plan.exited)) return "exited";
    spent = hangupMs;
    // It may have forked while it handled the hangup.
    plan.refresh();
  }
  return terminateTree(plan.pid, {
    startTime: plan.startTime,
    graceMs: Math.max(0, plan.killTimeoutMs - spent),
    killWaitMs: plan.killWaitMs,
    exited: plan.exited,
    known: plan.known(),
    onKill: plan.onKill,
  });
}
