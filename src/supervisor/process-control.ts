import { readFileSync } from "node:fs";
import { isProcessAlive, signalProcessTree } from "../shared/proc.js";

export interface ExitStatus {
  code: number | null;
  signal: string | null;
  at?: number;
}

/** The environment an agent inherits: ours, minus our own troupe identity. */
export function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    // The parent's own troupe identity must never leak into a child agent.
    if (value !== undefined && !key.startsWith("TROUPE_")) out[key] = value;
  }
  return out;
}

export function readExitStatus(path: string): ExitStatus | null {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as ExitStatus;
    return { code: parsed.code ?? null, signal: parsed.signal ?? null };
  } catch {
    return null;
  }
}

/** SIGTERM the tree, wait up to `graceMs`, then SIGKILL what is left. */
export async function killTree(pid: number, startTime: number | null, graceMs: number): Promise<void> {
  signalProcessTree(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isProcessAlive(pid, startTime)) await delay(20);
  if (isProcessAlive(pid, startTime)) signalProcessTree(pid, "SIGKILL");
  const hardDeadline = Date.now() + 5000;
  while (Date.now() < hardDeadline && isProcessAlive(pid, startTime)) await delay(20);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
