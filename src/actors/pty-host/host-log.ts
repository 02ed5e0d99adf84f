/** The host's own JSON log lines (it loads no logging library: its RSS budget is tight). */
import { writeSync } from "node:fs";

let logFd: number | null = null;
let logContext: Record<string, unknown> = {};

export function hostLog(level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  if (logFd === null) return;
  try {
    writeSync(logFd, `${JSON.stringify({ time: new Date().toISOString(), level, pid: process.pid, ...logContext, msg, ...fields })}\n`);
  } catch {
    // logging must never take the host down
  }
}

/** Where host log lines go, and the fields every line carries (builder id, name, agent pid). */
export function configureHostLog(update: { fd?: number; context?: Record<string, unknown> }): void {
  if (update.fd !== undefined) logFd = update.fd;
  if (update.context !== undefined) logContext = { ...logContext, ...update.context };
}
