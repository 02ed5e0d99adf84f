/**
 * How a workspace's daemon is started (DESIGN §9: by the CLI, detached, its
 * output in `.troupe/logs/daemon.log`). Node builtins only: the CLI and the
 * `connect()` client load it. It knows nothing of the client; the caller
 * says how to try the socket, and gets back what that returned.
 */
import { spawn } from "node:child_process";
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { TroupeError } from "../shared/errors.js";
import { START_FAILURE_PREFIX } from "./protocol.js";
import { daemonPaths } from "../shared/layout.js";

export interface LaunchOptions {
  /** Node binary for the daemon (default $TROUPE_DAEMON_NODE, else this Node). */
  node?: string;
  /** Say on stderr that a daemon was started (default true). */
  announce?: boolean;
}

/** The daemon program next to this module (dist/daemon/main.js). */
function daemonProgram(): string {
  return fileURLToPath(new URL("./main.js", import.meta.url));
}

/**
 * V8 flags of the daemon. A young generation capped at 1 MiB per semi-space
 * (default 16): a burst of spawns otherwise grows it to 32+ MiB that stays
 * resident, while the daemon's work is many small, short-lived objects that
 * a small nursery collects cheaply. --optimize-for-size makes V8 grow the old
 * generation less eagerly and collect sooner: without it the RSS after 100
 * spawns swung between 100 and 120 MB depending on when the last major GC
 * ran (DESIGN §12: ≤ 100 MB with 100 builders; with it 80-97 MB).
 */
const DAEMON_NODE_FLAGS = ["--max-semi-space-size=1", "--optimize-for-size"];

/** Environment of a daemon started here: never an agent's identity (an agent may be the one starting it). */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ["TROUPE_TOKEN", "TROUPE_AGENT", "TROUPE_AGENT_ID", "TROUPE_SOCKET", "TROUPE_WORKSPACE"]) delete env[key];
  // glibc gives each thread that mallocs (libuv's pool runs the journal's fsyncs) an arena
  // of its own; their slack was 10-20 MB of the daemon's RSS. Two arenas are plenty here.
  env.MALLOC_ARENA_MAX ??= "2";
  return env;
}

/**
 * Starts a daemon for `root` and waits until `tryConnect(socket)` returns a
 * connection (not null). Concurrent first commands race: the daemons that lose
 * the workspace lock exit with STORE_LOCKED, and their launchers wait for the
 * winner instead of failing. Any other start failure is thrown at once, with
 * the code the daemon gave.
 */
export async function startDaemon<T>(root: string, options: LaunchOptions, tryConnect: (socket: string) => Promise<T | null>): Promise<T> {
  const paths = daemonPaths(root);
  for (const dir of [paths.troupeDir, paths.logsDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const node = options.node ?? process.env.TROUPE_DAEMON_NODE ?? process.execPath;
  const log = openSync(paths.logFile, "a", 0o600);
  const logOffset = fstatSync(log).size;
  let exited: { code: number | null; signal: string | null } | null = null;
  let spawnError: Error | null = null;
  let pid: number | undefined;
  try {
    const child = spawn(node, [...DAEMON_NODE_FLAGS, daemonProgram(), "--workspace", root], { cwd: root, detached: true, stdio: ["ignore", log, log], env: daemonEnv() });
    pid = child.pid;
    child.on("error", (error) => (spawnError = error));
    child.on("exit", (code, signal) => (exited = { code, signal }));
    child.unref();
  } finally {
    closeSync(log);
  }
  if (options.announce !== false && pid !== undefined) process.stderr.write(`troupe: started the daemon (pid ${pid}) for ${root}\n`);

  const timeoutMs = Number(process.env.TROUPE_DAEMON_START_TIMEOUT_MS ?? 30_000);
  const deadline = Date.now() + timeoutMs;
  let exitedAt: number | null = null;
  let delay = 10;
  for (;;) {
    if (spawnError) throw new TroupeError("DAEMON_START_FAILED", `cannot start the daemon with ${node}: ${(spawnError as Error).message}`, { node });
    const connection = await tryConnect(paths.socket);
    if (connection !== null) return connection;
    if (exited && exitedAt === null) exitedAt = Date.now();
    if (exitedAt !== null) {
      const failure = readStartFailure(paths.logFile, logOffset);
      // Grace after the exit: a winner that is already listening is found on the next try.
      if (!(failure && rivalIsStarting(failure)) && Date.now() - exitedAt > 250) {
        throw failure ?? new TroupeError("DAEMON_START_FAILED", `the daemon exited (${describeExit(exited)}) before answering; see ${paths.logFile}`, { log: paths.logFile, workspace: root });
      }
    }
    if (Date.now() > deadline) {
      throw new TroupeError("DAEMON_START_FAILED", `the daemon did not answer within ${timeoutMs} ms; see ${paths.logFile}`, { log: paths.logFile, pid, workspace: root });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Our daemon lost the start race to another daemon that is still alive (and so may still be starting). */
function rivalIsStarting(failure: TroupeError): boolean {
  const owner = failure.details.pid;
  return failure.code === "STORE_LOCKED" && typeof owner === "number" && isDaemonProcess(owner);
}

/** Whether `pid` is a troupe daemon. */
function isDaemonProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").some((arg) => arg.endsWith(`daemon${sep}main.js`));
  } catch {
    return false;
  }
}

function describeExit(exit: { code: number | null; signal: string | null } | null): string {
  if (!exit) return "unknown status";
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** Why the daemon did not start: its last start-failure line after `offset` in the log, as the TroupeError it wrote. */
function readStartFailure(logFile: string, offset: number): TroupeError | null {
  let text = "";
  try {
    const fd = openSync(logFile, "r");
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size - offset, 256 * 1024);
      if (length > 0) {
        const buffer = Buffer.alloc(length);
        readSync(fd, buffer, 0, length, size - length);
        text = buffer.toString("utf8");
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const last = text.split("\n").filter((line) => line.startsWith(START_FAILURE_PREFIX)).at(-1);
  return last === undefined ? null : parseStartFailure(last.slice(START_FAILURE_PREFIX.length));
}

/** The JSON of a start-failure line; a daemon of an older version wrote plain words, kept as the message. */
function parseStartFailure(text: string): TroupeError {
  try {
    const data = JSON.parse(text) as { code?: unknown; message?: unknown; details?: unknown };
    if (typeof data.code === "string" && typeof data.message === "string") {
      const details = typeof data.details === "object" && data.details !== null && !Array.isArray(data.details) ? (data.details as Record<string, unknown>) : {};
      return TroupeError.fromJSON({ code: data.code, message: data.message, details });
    }
  } catch {
    // not JSON: an older daemon's words
  }
  return new TroupeError("DAEMON_START_FAILED", text);
}
