/**
 * Why a builder died, in words a person acts on (its worker_died mail): the
 * chart's reason is a code ("intensity"); the mail says "restart limit
 * reached (3 in 10 min)" and quotes the last lines the agent showed.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { BuilderContext } from "../../machines/builder.js";

/** Bytes read from the end of a transcript for its last lines. */
const TAIL_BYTES = 16 * 1024;

export function deathInWords(context: Pick<BuilderContext, "reason" | "lastExit" | "policy" | "error">): string {
  const exit = context.lastExit ? (context.lastExit.signal ? `killed by ${context.lastExit.signal}` : `exit code ${context.lastExit.code}`) : null;
  switch (context.reason) {
    case "intensity":
      return `restart limit reached (${context.policy.maxRestarts} in ${duration(context.policy.periodMs)})${exit ? `; it last ended with ${exit}` : ""}`;
    case "crashed":
      return `it crashed (${exit ?? "no exit status"}) and its restart type does not restart it`;
    case "stalled":
      return `it was silent for ${duration(context.policy.zombieMs)} and was killed`;
    case "start_failed":
      return `it could not be started${context.error ? `: ${context.error}` : ""}`;
    default:
      return context.reason ?? "no reason recorded";
  }
}

/** The last `count` non-blank lines of a text file (none when it is missing). */
export function lastLines(path: string, count: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString("utf8").split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
    // The first line may be cut by the window: drop it unless the file is all here.
    return (length < size ? lines.slice(1) : lines).slice(-count);
  } finally {
    closeSync(fd);
  }
}

function duration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1_000 === 0) return `${ms / 1_000} s`;
  return `${ms} ms`;
}
