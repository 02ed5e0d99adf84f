/** The host's small IO helpers: its spec, its start-up report, its socket path, its exit-status file. */
import { closeSync, lstatSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { createConnection } from "node:net";
import { constants as osConstants } from "node:os";
import { dirname } from "node:path";
import { hostFailure } from "./failure.js";
import { hostLog } from "./host-log.js";
import { MAX_SCROLLBACK_BYTES, MAX_SCROLLBACK_LINES, type ExitStatus, type PtyHostSpec, type ReadyMessage } from "./protocol.js";

export async function assertSocketFree(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw hostFailure("SPAWN_FAILED", `${path} exists and is not a socket; refusing to replace it.`, { socketPath: path });
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(true); // it accepted but did not settle: assume somebody is there
    }, 1_000);
    probe.once("connect", () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (live) throw hostFailure("SPAWN_FAILED", `A pty host already serves ${path}; adopt it instead of starting a second agent.`, { socketPath: path });
  unlinkSync(path);
}

export function writeExitStatus(spec: PtyHostSpec, exit: ExitStatus): void {
  try {
    mkdirSync(dirname(spec.exitStatusPath), { recursive: true, mode: 0o700 });
    const tmp = `${spec.exitStatusPath}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ builderId: spec.builderId, ...exit })}\n`, { mode: 0o600 });
    renameSync(tmp, spec.exitStatusPath);
  } catch (error) {
    hostLog("error", "could not write the exit status file", { err: errorText(error), path: spec.exitStatusPath });
  }
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

export function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

export function normalizeSignal(value: unknown): NodeJS.Signals | null {
  if (typeof value !== "string") return null;
  const upper = value.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  return name in osConstants.signals ? (name as NodeJS.Signals) : null;
}

export function isDimension(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 10_000;
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function validateSpec(value: unknown): PtyHostSpec {
  const spec = value as Partial<PtyHostSpec> | null;
  const bad = (what: string): never => {
    throw hostFailure("INVALID_ARGUMENT", `Invalid pty host spec: ${what}.`);
  };
  if (typeof spec !== "object" || spec === null) return bad("not an object");
  for (const key of ["builderId", "name", "cwd", "socketPath", "transcriptPath", "exitStatusPath", "logPath"] as const) {
    if (typeof spec[key] !== "string" || spec[key] === "") bad(`${key} must be a non-empty string`);
  }
  if (!Array.isArray(spec.cmd) || spec.cmd.length === 0 || !spec.cmd.every((arg) => typeof arg === "string") || spec.cmd[0] === "") bad("cmd must be a non-empty array of strings");
  if (spec.pty !== "auto" && spec.pty !== "on" && spec.pty !== "off") bad('pty must be "auto", "on" or "off"');
  if (typeof spec.env !== "object" || spec.env === null || !Object.values(spec.env).every((v) => typeof v === "string")) bad("env must map names to strings");
  if (spec.scrollbackBytes !== undefined && !(Number.isInteger(spec.scrollbackBytes) && spec.scrollbackBytes >= 1 && spec.scrollbackBytes <= MAX_SCROLLBACK_BYTES)) bad("scrollbackBytes out of range");
  if (spec.scrollbackLines !== undefined && !(Number.isInteger(spec.scrollbackLines) && spec.scrollbackLines >= 1 && spec.scrollbackLines <= MAX_SCROLLBACK_LINES)) bad("scrollbackLines out of range");
  if (spec.collectTimeoutMs !== undefined && !(Number.isInteger(spec.collectTimeoutMs) && spec.collectTimeoutMs >= 1 && spec.collectTimeoutMs <= 2 ** 31 - 1)) bad("collectTimeoutMs out of range");
  for (const key of ["cols", "rows"] as const) if (spec[key] !== undefined && !isDimension(spec[key])) bad(`${key} out of range`);
  return spec as PtyHostSpec;
}

/** The spec, read from standard input up to EOF (never a file: it holds the agent's environment, secrets included). */
export function readSpecText(): string {
  // A blocking read of fd 0: cheaper than process.stdin's stream machinery.
  return readFileSync(0, "utf8");
}

export function sendReady(message: ReadyMessage): void {
  try {
    writeSync(3, `${JSON.stringify(message)}\n`);
  } catch {
    // no launcher listening (run by hand, or it gave up)
  }
  try {
    closeSync(3);
  } catch {
    // not open
  }
}

