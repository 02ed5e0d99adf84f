/**
 * Ending a process and its whole tree, the one way troupe does it: SIGTERM to
 * every member (and the groups they lead), SIGKILL to whatever is left after a
 * grace period. A pid is only ever signalled while it is still the process
 * that was recorded (pid + start time, see proc.ts), never found by name.
 *
 * Waiting is an abortable timer, not a poll: the caller passes what tells it
 * the process ended (a child's 'exit', a host socket's 'close') and the wait
 * ends the moment it fires. Only a process that is not our child, watched
 * without any such event, is checked at growing intervals. Node builtins only.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { settlesWithin } from "./wait.js";
import { isProcessAlive, processState, processTree, signalTree, type ProcessRef } from "./proc.js";

/** gone: nothing to end; exited: ended within the grace period; killed: needed SIGKILL; survived: outlived SIGKILL. */
export type TerminateOutcome = "gone" | "exited" | "killed" | "survived";

export interface TerminateOptions {
  /** The recorded start time of `pid`; a pid that now belongs to another process is left alone. null: not known. */
  startTime?: number | null;
  /** How long the tree has to end after the first signal before SIGKILL. */
  graceMs: number;
  /** After SIGKILL, how long to wait for the kernel to report the death (default 5000). */
  killWaitMs?: number;
  /** The first signal (default SIGTERM). */
  signal?: NodeJS.Signals;
  /** Settles when `pid` has exited; each wait ends as soon as it does. Without it, liveness is checked at growing intervals. */
  exited?: PromiseLike<unknown>;
  /** Members known from earlier (an earlier signal to the tree), ended with it although they may have left it since. */
  known?: readonly ProcessRef[];
  /**
   * Freeze `pid` (SIGSTOP) before its tree is read, then SIGKILL at once. For
   * a process that may be forking right now (a launcher that did not report):
   * a frozen process cannot add a child after the tree was read.
   */
  freeze?: boolean;
  /** Called just before SIGKILL is sent after the grace period ran out (for a log line). */
  onKill?: () => void;
}

const DEFAULT_KILL_WAIT_MS = 5_000;
/** How long a SIGSTOP may take to show in /proc before the tree is read anyway. */
const FREEZE_WAIT_MS = 1_000;

/** Ends `pid` and its whole tree; resolves once it is gone or has outlived SIGKILL. */
export async function terminateTree(pid: number, options: TerminateOptions): Promise<TerminateOutcome> {
  const root: ProcessRef = { pid, start: options.startTime ?? null };
  if (!isProcessAlive(root.pid, root.start)) return "gone";
  if (options.freeze) {
    await freeze(root);
    signalTree(treeOf(root, options.known), "SIGKILL");
    return (await waitForExit(root, options.killWaitMs ?? DEFAULT_KILL_WAIT_MS, options.exited)) ? "killed" : "survived";
  }
  const tree = treeOf(root, options.known);
  signalTree(tree, options.signal ?? "SIGTERM");
  if (await waitForExit(root, options.graceMs, options.exited)) {
    // The root is gone; a member that ignored the signal must not outlive it.
    signalTree(tree, "SIGKILL");
    return "exited";
  }
  options.onKill?.();
  // Read the tree again: it may have forked while it was asked to stop.
  signalTree(mergeRefs(tree, processTree(root.pid)), "SIGKILL");
  return (await waitForExit(root, options.killWaitMs ?? DEFAULT_KILL_WAIT_MS, options.exited)) ? "killed" : "survived";
}

/**
 * Resolves true once `ref` is gone, false when `timeoutMs` passed first. With
 * `exited` it waits for that event (one timer, cancelled when it fires) and
 * checks at growing intervals only for what is left of the time, since a
 * process that closed its socket may take a moment to be gone.
 */
export async function waitForExit(ref: ProcessRef, timeoutMs: number, exited?: PromiseLike<unknown>): Promise<boolean> {
  if (!isProcessAlive(ref.pid, ref.start)) return true;
  const deadline = Date.now() + timeoutMs;
  if (exited) {
    const fired = await settlesWithin(exited, timeoutMs);
    if (!isProcessAlive(ref.pid, ref.start)) return true;
    if (!fired) return false;
  }
  // No event tells us when a process that is not our child ends: look, at
  // growing intervals, so a quick exit is seen quickly and a slow one costs
  // a handful of /proc reads, not one every few milliseconds.
  for (let interval = 5; ; interval = Math.min(interval * 2, 100)) {
    const left = deadline - Date.now();
    if (left <= 0) return !isProcessAlive(ref.pid, ref.start);
    await sleep(Math.min(interval, left));
    if (!isProcessAlive(ref.pid, ref.start)) return true;
  }
}

async function freeze(root: ProcessRef): Promise<void> {
  try {
    process.kill(root.pid, "SIGSTOP");
  } catch {
    return; // gone already
  }
  // The kernel reports a stop in /proc, nowhere else (no event for a stopped child): look at growing intervals.
  const deadline = Date.now() + FREEZE_WAIT_MS;
  for (let interval = 1; Date.now() < deadline; interval = Math.min(interval * 2, 50)) {
    const state = processState(root.pid);
    if (state === null || state === "T" || state === "Z") return;
    await sleep(interval);
  }
}

function treeOf(root: ProcessRef, known: readonly ProcessRef[] = []): ProcessRef[] {
  const tree = processTree(root.pid).map((ref) => (ref.pid === root.pid && root.start !== null ? root : ref));
  return mergeRefs(tree, known);
}

/** `a` plus the members of `b` it does not hold (by pid and start time). */
function mergeRefs(a: readonly ProcessRef[], b: readonly ProcessRef[]): ProcessRef[] {
  const seen = new Set(a.map((ref) => `${ref.pid}:${ref.start}`));
  return [...a, ...b.filter((ref) => !seen.has(`${ref.pid}:${ref.start}`))];
}
