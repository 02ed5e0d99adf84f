import { readFileSync, readdirSync } from "node:fs";

/**
 * Process identity on Linux. A pid alone is not an identity: pids are reused.
 * A (pid, start time) pair is, so every pid troupe records is paired with the
 * start time the kernel reports in /proc/<pid>/stat (field 22, clock ticks
 * since boot).
 */

/** The start time of `pid` in clock ticks since boot, or null when it is gone. */
export function processStartTime(pid: number): number | null {
  const stat = readStat(pid);
  if (!stat) return null;
  const field = stat.fields[19]; // fields after "(comm)": index 0 is field 3 (state); starttime is field 22
  return field === undefined ? null : Number(field);
}

/** True when `pid` runs and, if `startTime` is given, is the same process that was recorded. */
export function isProcessAlive(pid: number, startTime?: number | null): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = readStat(pid);
  if (!stat) return false;
  if (stat.fields[0] === "Z" || stat.fields[0] === "X") return false; // a zombie is dead, only unreaped
  if (startTime === undefined || startTime === null) return true;
  return Number(stat.fields[19]) === startTime;
}

/** The parent pid of `pid`, or null. */
export function parentPid(pid: number): number | null {
  const stat = readStat(pid);
  return stat ? Number(stat.fields[1]) : null;
}

/** Every live descendant of `pid` (children, grandchildren, …), found through /proc. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of safeReaddir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    const ppid = parentPid(child);
    if (ppid === null) continue;
    const list = children.get(ppid) ?? [];
    list.push(child);
    children.set(ppid, list);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const child of children.get(next) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * Signal a whole process tree: the process group led by `pid` (agents run as
 * session leaders, so their group holds their ordinary children) and every
 * descendant found through /proc (which catches children that left the group).
 * Returns the pids that were signalled.
 */
export function signalProcessTree(pid: number, signal: NodeJS.Signals): number[] {
  const targets = [pid, ...descendantPids(pid)];
  try {
    process.kill(-pid, signal);
  } catch {
    // not a group leader, or the group is gone: the per-pid pass below covers it
  }
  const signalled: number[] = [];
  for (const target of targets) {
    try {
      process.kill(target, signal);
      signalled.push(target);
    } catch {
      // already gone
    }
  }
  return signalled;
}

/** A process as recorded: its pid and, when known, its start time (pids are reused). */
export interface ProcessRef {
  pid: number;
  start: number | null;
}

/**
 * The whole tree of `pid`, each member with its start time, read in one pass
 * over /proc: its descendants, and every member of a process group or session
 * that a member leads (an agent is a session leader; its jobs may sit in
 * groups of their own, and children that were re-parented keep their group).
 * This process is never part of it.
 */
export function processTree(pid: number): ProcessRef[] {
  const all: Array<{ pid: number; ppid: number; pgrp: number; session: number; start: number }> = [];
  for (const entry of safeReaddir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const [, ppid, pgrp, session] = stat.fields;
    all.push({ pid: Number(entry), ppid: Number(ppid), pgrp: Number(pgrp), session: Number(session), start: Number(stat.fields[19]) });
  }
  const members = new Set([pid]);
  // A fixed point: a member found late (a grandchild in a led group) may lead others.
  for (let grew = true; grew; ) {
    grew = false;
    for (const proc of all) {
      if (members.has(proc.pid)) continue;
      if (members.has(proc.ppid) || members.has(proc.pgrp) || members.has(proc.session)) {
        members.add(proc.pid);
        grew = true;
      }
    }
  }
  members.delete(process.pid);
  const starts = new Map(all.map((proc) => [proc.pid, proc.start]));
  return [...members].map((member) => ({ pid: member, start: starts.get(member) ?? null }));
}

/**
 * Sends `signal` to every member of `refs` that is still the process that was
 * recorded, and to the group each of them leads (a group id is never reused
 * while the group exists, so it is still theirs). Returns the pids signalled.
 */
export function signalTree(refs: readonly ProcessRef[], signal: NodeJS.Signals): number[] {
  const signalled: number[] = [];
  for (const ref of refs) {
    if (ref.pid === process.pid || !isProcessAlive(ref.pid, ref.start)) continue;
    try {
      process.kill(-ref.pid, signal);
    } catch {
      // not a group leader
    }
    try {
      process.kill(ref.pid, signal);
      signalled.push(ref.pid);
    } catch {
      // gone meanwhile
    }
  }
  return signalled;
}

/** The state letter of `pid` in /proc (R, S, T, Z, …), or null when it is gone. */
export function processState(pid: number): string | null {
  return readStat(pid)?.fields[0] ?? null;
}

function readStat(pid: number): { fields: string[] } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: split after the last ')'
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  return { fields: text.slice(close + 2).trim().split(" ") };
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
