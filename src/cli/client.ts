/**
 * The CLI's side of the daemon protocol: finds the workspace's daemon, starts
 * it when it is not running, and makes JSON-RPC calls. Node builtins only.
 */
import { spawn } from "node:child_process";
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { sep } from "node:path";
import { fileURLToPath } from "node:url";
import { EVENT_NOTIFICATION, PROTOCOL_VERSION, START_FAILURE_PREFIX, protocolMismatchMessage, type HelloResult, type RpcErrorData } from "../daemon/protocol.js";
import { daemonPaths, findWorkspace } from "../daemon/workspace.js";
import { CliError } from "./errors.js";

/** Replies may be larger than requests (a long status, a big inbox). */
const MAX_REPLY_BYTES = 256 * 1024 * 1024;

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void; method: string };

export class DaemonClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closedError: Error | null = null;
  private readonly listeners = new Set<(event: unknown) => void>();
  private readonly closeListeners = new Set<() => void>();
  hello: HelloResult | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => this.fail(new CliError("DAEMON_UNREACHABLE", `lost the daemon connection: ${error.message}`)));
    socket.on("close", () => {
      this.fail(new CliError("DAEMON_UNREACHABLE", "the daemon closed the connection"));
      for (const fn of this.closeListeners) fn();
    });
  }

  /** Connects and says hello (pipelined: calls made right after do not wait for it). */
  static connect(socketPath: string): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      const onError = (error: NodeJS.ErrnoException) => reject(error);
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        const client = new DaemonClient(socket, socketPath);
        resolve(client);
      });
    });
  }

  /** The protocol handshake; every other call waits for nothing but is ordered after it. */
  async handshake(timeoutMs = Number(process.env.TROUPE_HELLO_TIMEOUT_MS ?? 15_000)): Promise<HelloResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CliError("DAEMON_UNREACHABLE", `the daemon at ${this.socketPath} did not answer within ${timeoutMs} ms; see .troupe/logs/daemon.log (a wedged daemon can be killed: its pid is in .troupe/state/lock)`)), timeoutMs);
    });
    try {
      this.hello = (await Promise.race([this.call("hello", { protocol: PROTOCOL_VERSION, client: `troupe-cli/${process.version}` }), timeout])) as HelloResult;
    } catch (error) {
      if (error instanceof CliError && error.code === "PROTOCOL_MISMATCH") {
        const daemon = error.details.daemon;
        throw new CliError("PROTOCOL_MISMATCH", typeof daemon === "number" ? protocolMismatchMessage(daemon, PROTOCOL_VERSION) : error.message, error.details);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return this.hello;
  }

  call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, method });
      this.socket.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
    });
  }

  onEvent(listener: (event: unknown) => void): void {
    this.listeners.add(listener);
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) break;
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      const line = this.chunks.length === 0 ? piece : Buffer.concat([...this.chunks, piece]);
      this.chunks = [];
      this.buffered = 0;
      this.onLine(line.toString("utf8"));
    }
    if (start < chunk.length) {
      this.chunks.push(chunk.subarray(start));
      this.buffered += chunk.length - start;
      if (this.buffered > MAX_REPLY_BYTES) {
        this.fail(new CliError("PROTOCOL_ERROR", "the daemon sent an oversized frame"));
        this.socket.destroy();
      }
    }
  }

  private onLine(line: string): void {
    if (line.trim() === "") return;
    let message: { id?: unknown; result?: unknown; error?: { code: number; message: string; data?: RpcErrorData }; method?: string; params?: { event?: unknown } };
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (message.method === EVENT_NOTIFICATION) {
      for (const listener of this.listeners) listener(message.params?.event);
      return;
    }
    if (typeof message.id !== "number") {
      // an error about a frame we sent that had no usable id: fail everything pending
      if (message.error) this.fail(toCliError(message.error));
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.error) pending.reject(toCliError(message.error));
    else pending.resolve(message.result);
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

function toCliError(error: { code: number; message: string; data?: RpcErrorData }): CliError {
  const data = error.data;
  return new CliError(data?.code ?? `RPC_${error.code}`, data?.message ?? error.message, data?.details ?? {});
}

// ---- finding and starting the daemon ----------------------------------------------

export interface Workspace {
  root: string;
  commonDir: string;
}

let cachedWorkspace: Workspace | null = null;

export function workspace(): Workspace {
  cachedWorkspace ??= findWorkspace(process.cwd());
  return cachedWorkspace;
}

/** Where the workspace's daemon listens (recorded by the daemon when the natural path is too long). */
export function socketPathOf(root: string): string {
  const paths = daemonPaths(root);
  if (!paths.socket.startsWith(paths.runDir)) {
    try {
      const recorded = readFileSync(paths.socketRecord, "utf8").trim();
      if (recorded) return recorded;
    } catch {
      // not recorded yet: the computed path is where a new daemon will listen
    }
  }
  return paths.socket;
}

function isAbsent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ENOTSOCK" || code === "ECONNRESET";
}

async function tryConnect(socketPath: string): Promise<DaemonClient | null> {
  let client: DaemonClient;
  try {
    client = await DaemonClient.connect(socketPath);
  } catch (error) {
    if (isAbsent(error)) return null;
    throw new CliError("DAEMON_UNREACHABLE", `cannot reach the daemon at ${socketPath}: ${(error as Error).message}`);
  }
  return client;
}

export interface ConnectOptions {
  /** A directory inside the repository (default: the current directory, or TROUPE_SOCKET when set). */
  workspace?: string;
  /** Start the daemon when none runs (default true). */
  autostart?: boolean;
  /** Node binary for a daemon started here (default $TROUPE_DAEMON_NODE, else this Node). */
  node?: string;
  /** Say on stderr that a daemon was started (default true). */
  announce?: boolean;
}

/**
 * A client of the workspace's daemon, with the hello exchanged. An agent
 * (TROUPE_SOCKET set) reaches its daemon without looking for the workspace.
 */
export async function connectDaemon(options: ConnectOptions = {}): Promise<DaemonClient> {
  const fromEnv = options.workspace === undefined ? process.env.TROUPE_SOCKET : undefined;
  if (fromEnv) {
    const client = await tryConnect(fromEnv);
    if (client) return handshake(client);
  }
  const root = options.workspace === undefined ? workspace().root : findWorkspace(options.workspace).root;
  const socketPath = socketPathOf(root);
  if (socketPath !== fromEnv) {
    const client = await tryConnect(socketPath);
    if (client) return handshake(client);
  }
  if (options.autostart === false) throw new CliError("DAEMON_NOT_RUNNING", `no daemon is running for ${root} (\`troupe daemon start\` starts one)`, { workspace: root });
  return startDaemon(root, options);
}

async function handshake(client: DaemonClient): Promise<DaemonClient> {
  try {
    await client.handshake();
    return client;
  } catch (error) {
    client.close();
    throw error;
  }
}

/** The daemon program next to this CLI (dist/daemon/main.js). */
export function daemonProgram(): string {
  return fileURLToPath(new URL("../daemon/main.js", import.meta.url));
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

/** Environment of a daemon started by the CLI: never an agent's identity (an agent may be the one starting it). */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ["TROUPE_TOKEN", "TROUPE_AGENT", "TROUPE_AGENT_ID", "TROUPE_SOCKET", "TROUPE_WORKSPACE"]) delete env[key];
  // glibc gives each thread that mallocs (libuv's pool runs the journal's fsyncs) an arena
  // of its own; their slack was 10-20 MB of the daemon's RSS. Two arenas are plenty here.
  env.MALLOC_ARENA_MAX ??= "2";
  return env;
}

export async function startDaemon(root: string, options: ConnectOptions = {}): Promise<DaemonClient> {
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
    if (spawnError) throw new CliError("DAEMON_START_FAILED", `cannot start the daemon with ${node}: ${(spawnError as Error).message}`, { node });
    const client = await tryConnect(paths.socket);
    if (client) return handshake(client);
    if (exited && exitedAt === null) exitedAt = Date.now();
    // A daemon that exited may have lost a start race to another daemon: wait for that one
    // (until the deadline) while it is alive; any other failure is reported at once.
    if (exitedAt !== null) {
      const reason = startFailure(paths.logFile, logOffset);
      const owner = reason ? /owned by pid (\d+)/.exec(reason) : null;
      const rivalStarting = owner !== null && isDaemonProcess(Number(owner[1]));
      if (!rivalStarting && Date.now() - exitedAt > 250) {
        throw new CliError("DAEMON_START_FAILED", reason ?? `the daemon exited (${describeExit(exited)}) before answering; see ${paths.logFile}`, { log: paths.logFile, workspace: root });
      }
    }
    if (Date.now() > deadline) {
      throw new CliError("DAEMON_START_FAILED", `the daemon did not answer within ${timeoutMs} ms; see ${paths.logFile}`, { log: paths.logFile, pid, workspace: root });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Whether `pid` is a troupe daemon (one that won a start race may still be starting). */
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

/** The reason a daemon gave for not starting: its last START_FAILURE_PREFIX line after `offset`. */
function startFailure(logFile: string, offset: number): string | null {
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
  const lines = text.split("\n").filter((line) => line.startsWith(START_FAILURE_PREFIX));
  const last = lines.at(-1);
  return last ? last.slice(START_FAILURE_PREFIX.length) : null;
}

/** Runs `fn` with a connected client and closes it afterwards. */
export async function withDaemon<T>(fn: (client: DaemonClient) => Promise<T>, options: ConnectOptions = {}): Promise<T> {
  const client = await connectDaemon(options);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** An agent's identity for the daemon (DESIGN §8): the token from its environment. */
export function agentAuth(): { auth?: { token: string } } {
  const token = process.env.TROUPE_TOKEN;
  return token ? { auth: { token } } : {};
}
