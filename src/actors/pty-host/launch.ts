import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { TroupeError } from "../../shared/errors.js";
import { LineFramer } from "../../shared/lines.js";
import { terminateTree } from "../../shared/terminate.js";
import { settlesWithin } from "../../shared/wait.js";
import { MAX_SCROLLBACK_BYTES, MAX_SCROLLBACK_LINES, hostTitle, type PtyHostSpec, type ReadyMessage } from "./protocol.js";

export type { PtyHostSpec } from "./protocol.js";

/** What `launchPtyHost` resolves to once the agent runs and the host's socket listens: the host's own report. */
export type HostStarted = Omit<Extract<ReadyMessage, { ok: true }>, "ok">;

export interface LaunchOptions {
  /** A host booted ahead of need, used instead of starting one when it fits. */
  spare?: SpareHost | null;
  /** The Node binary that runs the host (default: this process's). */
  nodePath?: string;
  /** How long the host may take to confirm the agent started (default 15 s). */
  startTimeoutMs?: number;
}

const DEFAULT_START_TIMEOUT_MS = 15_000;
/** The ready report is one short JSON object; anything longer is not one. */
const READY_LINE_MAX_BYTES = 1024 * 1024;

/**
 * Starts a detached pty host (its own session: it survives this process)
 * running `spec.cmd`, and resolves once the host confirmed the agent started
 * and its socket listens. On any failure it rejects with a TroupeError
 * (PTY_UNAVAILABLE, SPAWN_FAILED, INVALID_ARGUMENT) and leaves nothing behind:
 * no host, no agent, no socket file.
 */
export async function launchPtyHost(spec: PtyHostSpec, options: LaunchOptions = {}): Promise<HostStarted> {
  validateSpec(spec);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const nodePath = options.nodePath ?? process.execPath;
  mkdirSync(dirname(spec.socketPath), { recursive: true, mode: 0o700 });
  const host = options.spare?.take(nodePath) ?? startHostProcess(nodePath, spec.logPath, ["--socket", spec.socketPath], hostTitle(spec));
  const { child, spawnError, exited } = host;
  // The spec goes through a pipe, never a file: the agent's environment may hold secrets.
  child.stdin!.end(JSON.stringify(spec));

  const readyStream = child.stdio[3] as Readable;
  const firstLine = readLine(readyStream);
  type Outcome =
    | { kind: "line"; line: string | null }
    | { kind: "spawn-error"; error: Error }
    | { kind: "exited"; status: { code: number | null; signal: string | null } }
    | { kind: "timeout" };
  const stopStartTimer = new AbortController();
  // Unref'd: a launch must not by itself keep its caller's process alive.
  const startTimer = sleep(startTimeoutMs, undefined, { signal: stopStartTimer.signal, ref: false }).catch(() => new Promise<never>(() => undefined));
  let outcome: Outcome = await Promise.race([
    firstLine.then((line): Outcome => ({ kind: "line", line })),
    spawnError.then((error): Outcome => ({ kind: "spawn-error", error })),
    exited.then((status): Outcome => ({ kind: "exited", status })),
    startTimer.then((): Outcome => ({ kind: "timeout" })),
  ]);
  stopStartTimer.abort();
  if (outcome.kind === "exited") {
    // The exit may be noticed before the last words the host wrote to fd 3 were read.
    if (await settlesWithin(firstLine, 1_000, { ref: false })) {
      const line = await firstLine;
      if (line !== null) outcome = { kind: "line", line };
    }
  }

  let ready: ReadyMessage | null = null;
  if (outcome.kind === "line" && outcome.line !== null) {
    try {
      ready = JSON.parse(outcome.line) as ReadyMessage;
    } catch {
      ready = null;
    }
  }

  if (ready?.ok) {
    readyStream.destroy();
    child.unref();
    const { ok: _ok, ...started } = ready;
    return started;
  }

  // Failure: make sure nothing is left, then explain.
  const hostPid = child.pid;
  if (hostPid !== undefined) {
    // A host that reported its failure cleans up and exits by itself; give it a moment, then force.
    const graceful = ready && !ready.ok ? await settlesWithin(exited, 2_000, { ref: false }) : false;
    // Frozen first (SIGSTOP) so it cannot fork an agent after its process tree was read.
    if (!graceful) await terminateTree(hostPid, { graceMs: 0, freeze: true, exited });
  }
  readyStream.destroy();
  child.unref();
  // A host that died after it bound its socket leaves the file behind; a live
  // one (the host that made us fail with "already serves") keeps its own.
  await removeStaleSocket(spec.socketPath);

  const base = { builderId: spec.builderId, name: spec.name, cmd: spec.cmd, logPath: spec.logPath, hostPid: hostPid ?? null };
  if (ready && !ready.ok) {
    throw new TroupeError(ready.error.code, ready.error.message, { ...base, ...(ready.error.details ?? {}) });
  }
  const tail = logTail(spec.logPath);
  switch (outcome.kind) {
    case "spawn-error":
      throw new TroupeError("SPAWN_FAILED", `Could not start the pty host with ${options.nodePath ?? process.execPath}: ${outcome.error.message}`, base, { cause: outcome.error });
    case "timeout":
      throw new TroupeError("SPAWN_FAILED", `The pty host did not confirm the agent started within ${startTimeoutMs} ms; it was killed. See ${spec.logPath}${tail ? `: ${tail}` : "."}`, base);
    case "exited":
      throw new TroupeError(
        "SPAWN_FAILED",
        `The pty host exited (${outcome.status.signal ?? `code ${outcome.status.code}`}) before the agent started. See ${spec.logPath}${tail ? `: ${tail}` : "."}`,
        { ...base, ...outcome.status },
      );
    default:
      throw new TroupeError("SPAWN_FAILED", `The pty host closed its start pipe without confirming the agent started. See ${spec.logPath}${tail ? `: ${tail}` : "."}`, base);
  }
}

interface HostProcess {
  child: ChildProcess;
  spawnError: Promise<Error>;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Starts a detached host process that waits for its spec on stdin. */
function startHostProcess(nodePath: string, logPath: string, args: string[], argv0?: string): HostProcess {
  mkdirSync(dirname(logPath), { recursive: true, mode: 0o700 });
  // The host's stderr goes to its log: a crash before it could log (a native
  // abort in node-pty, say) still leaves its trace there.
  const logFd = openSync(logPath, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(nodePath, [ptyHostMainPath(), ...args], { cwd: "/", env: hostEnv(), detached: true, stdio: ["pipe", "ignore", logFd, "pipe"], ...(argv0 ? { argv0 } : {}) });
  } finally {
    closeSync(logFd);
  }
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  child.stdin!.on("error", () => undefined);
  return { child, spawnError, exited };
}

function hostEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const ptyModule = env.TROUPE_PTY_MODULE;
  if (ptyModule && ptyModule.startsWith(".")) env.TROUPE_PTY_MODULE = resolvePath(ptyModule); // the host runs in "/"
  return env;
}

/**
 * One pty host booted ahead of need: it blocks reading its spec on stdin, so
 * the next launch skips a Node start-up. It holds no builder, socket or agent;
 * when its owner closes (or dies) its stdin ends and it exits at once.
 */
export class SpareHost {
  private host: HostProcess | null;
  private readonly nodePath: string;
  private readonly ptyModule: string | undefined;

  constructor(options: { nodePath?: string; runDir: string; logPath: string }) {
    this.nodePath = options.nodePath ?? process.execPath;
    this.ptyModule = process.env.TROUPE_PTY_MODULE;
    this.host = startHostProcess(this.nodePath, options.logPath, ["--spare-for", options.runDir]);
    const { child } = this.host;
    // A spare must never keep its owner's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stdio[3] as unknown as { unref?: () => void }).unref?.();
    void this.host.exited.then(() => {
      if (this.host?.child === child) this.host = null;
    });
  }

  /** The waiting host, if it still waits and was started the same way; it is then no longer spare. */
  take(nodePath: string): HostProcess | null {
    const host = this.host;
    this.host = null;
    if (!host || host.child.exitCode !== null || host.child.signalCode !== null) return null;
    if (nodePath !== this.nodePath || process.env.TROUPE_PTY_MODULE !== this.ptyModule) {
      host.child.stdin!.end();
      return null;
    }
    (host.child.stdin as unknown as { ref?: () => void }).ref?.();
    (host.child.stdio[3] as unknown as { ref?: () => void }).ref?.();
    return host;
  }

  /** Lets the spare go: its stdin ends and it exits. */
  discard(): void {
    this.host?.child.stdin!.end();
    this.host = null;
  }
}

/**
 * The host's entry point: the sibling `main.js` when this module runs from
 * dist/, else (run from src/ by vitest or tsx) the package's built copy.
 */
export function ptyHostMainPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, "main.js");
  if (existsSync(sibling)) return sibling;
  let dir = here;
  for (;;) {
    if (existsSync(join(dir, "package.json"))) {
      const built = join(dir, "dist", "actors", "pty-host", "main.js");
      if (existsSync(built)) return built;
      throw new TroupeError("SPAWN_FAILED", `The pty host is not built (${built} is missing); run \`npm run build\`.`, { path: built });
    }
    const parent = dirname(dir);
    if (parent === dir) throw new TroupeError("SPAWN_FAILED", `Could not locate the pty host entry point from ${here}; run \`npm run build\`.`);
    dir = parent;
  }
}

function validateSpec(spec: PtyHostSpec): void {
  const bad = (what: string): never => {
    throw new TroupeError("INVALID_ARGUMENT", `Invalid pty host spec: ${what}.`, { builderId: spec?.builderId });
  };
  if (typeof spec !== "object" || spec === null) bad("not an object");
  for (const key of ["builderId", "name"] as const) if (typeof spec[key] !== "string" || spec[key] === "") bad(`${key} must be a non-empty string`);
  for (const key of ["cwd", "socketPath", "transcriptPath", "exitStatusPath", "logPath"] as const) {
    if (typeof spec[key] !== "string" || !isAbsolute(spec[key])) bad(`${key} must be an absolute path`);
  }
  if (Buffer.byteLength(spec.socketPath) > 107) bad(`socketPath is longer than the 107-byte limit of Unix sockets (${spec.socketPath})`);
  if (!Array.isArray(spec.cmd) || spec.cmd.length === 0 || spec.cmd[0] === "" || !spec.cmd.every((arg) => typeof arg === "string")) bad("cmd must be a non-empty array of strings");
  if (spec.pty !== "auto" && spec.pty !== "on" && spec.pty !== "off") bad('pty must be "auto", "on" or "off"');
  if (typeof spec.env !== "object" || spec.env === null || !Object.values(spec.env).every((value) => typeof value === "string")) bad("env must map names to strings");
  for (const key of ["cols", "rows"] as const) {
    const value = spec[key];
    if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > 10_000)) bad(`${key} must be an integer between 1 and 10000`);
  }
  if (spec.scrollbackBytes !== undefined && (!Number.isInteger(spec.scrollbackBytes) || spec.scrollbackBytes < 1 || spec.scrollbackBytes > MAX_SCROLLBACK_BYTES)) {
    bad(`scrollbackBytes must be an integer between 1 and ${MAX_SCROLLBACK_BYTES}`);
  }
  if (spec.scrollbackLines !== undefined && (!Number.isInteger(spec.scrollbackLines) || spec.scrollbackLines < 1 || spec.scrollbackLines > MAX_SCROLLBACK_LINES)) {
    bad(`scrollbackLines must be an integer between 1 and ${MAX_SCROLLBACK_LINES}`);
  }
  if (spec.collectTimeoutMs !== undefined && (!Number.isInteger(spec.collectTimeoutMs) || spec.collectTimeoutMs < 1 || spec.collectTimeoutMs > 2 ** 31 - 1)) {
    bad("collectTimeoutMs must be a positive integer of milliseconds (at most 2^31-1)");
  }
}

/** Removes `path` if it is a socket nobody listens on any more. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) return;
  } catch {
    return;
  }
  const stale = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(false);
    });
    probe.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
  if (stale) rmSync(path, { force: true });
}

/** The first line written to `stream`, or null if it ended without one. */
function readLine(stream: Readable): Promise<string | null> {
  return new Promise((resolve) => {
    const framer = new LineFramer({ maxLineBytes: READY_LINE_MAX_BYTES, onLine: resolve, onOverflow: () => resolve(null) });
    stream.on("data", (chunk: Buffer) => framer.push(chunk));
    stream.on("error", () => resolve(null));
    stream.on("close", () => {
      framer.end();
      resolve(null);
    });
  });
}

function logTail(path: string): string {
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n");
    return lines.slice(-3).join(" | ").slice(-600);
  } catch {
    return "";
  }
}
