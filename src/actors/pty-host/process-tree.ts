/** The agent's whole process tree: found before it is signalled, so nothing escapes by re-parenting. */
import { readFileSync, readdirSync } from "node:fs";
import { descendantPids, isProcessAlive, processStartTime } from "../../shared/proc.js";

export interface ProcRef {
  pid: number;
  start: number | null;
}

/** Processes in the agent's session or process group (both are the agent's pid). */
export function sessionMembers(leader: number): number[] {
  const found: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === leader || Number(fields[3]) === leader) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The agent, its descendants and its session, each with its start time (pids are reused). */
export function snapshotTree(pid: number): ProcRef[] {
  const pids = new Set([pid, ...descendantPids(pid), ...sessionMembers(pid)]);
  pids.delete(process.pid);
  return [...pids].map((p) => ({ pid: p, start: processStartTime(p) }));
}

export function signalRefs(group: number, refs: ProcRef[], signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // the group is gone (or empty)
  }
  for (const ref of refs) {
    if (ref.pid === process.pid || !isProcessAlive(ref.pid, ref.start)) continue;
    try {
      process.kill(ref.pid, signal);
    } catch {
      // gone
    }
  }
}

