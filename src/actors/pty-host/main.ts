/**
 * The pty host (DESIGN §5): one small detached process per builder that owns
 * the agent's terminal and outlives any supervisor.
 *
 *   node dist/actors/pty-host/main.js [specFile] [--socket <path>] [--spare-for <run dir>]
 *
 * The spec (a PtyHostSpec as JSON) is read from `specFile` (deleted once read)
 * or, without one, from standard input. When the agent runs and the socket
 * listens, one JSON line (a ReadyMessage) goes to fd 3, which is then closed:
 * after that the host never writes to its launcher again.
 *
 * Budget: ≤ 48 MB RSS. Import node builtins only (and node-pty, lazily).
 */
import type { ChildProcess } from "node:child_process";
import {
  accessSync,
  chmodSync,
  closeSync,
  constants as fsConstants,
  createWriteStream,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  type WriteStream,
} from "node:fs";
import { createRequire } from "node:module";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import { descendantPids, isProcessAlive, processStartTime } from "../../shared/proc.js";
import {
  DEFAULT_COLLECT_TIMEOUT_MS,
  DEFAULT_SCROLLBACK_BYTES,
  LineDecoder,
  MAX_SCROLLBACK_BYTES,
  PROTOCOL_VERSION,
  encodeFrame,
  parseFrame,
  type ExitStatus,
  type HostFrame,
  type HostIdentity,
  type HostStatus,
  type PtyErrorInfo,
  type PtyHostSpec,
  type ReadyMessage,
} from "./protocol.js";
import { ScrollbackRing } from "./ring.js";

/** A client whose unsent output exceeds this is too slow: it is dropped, not buffered without bound. */
const MAX_CLIENT_BACKLOG = 8 * 1024 * 1024;
const DEFAULT_KILL_TIMEOUT_MS = 5_000;
/** After SIGKILL, how long to wait for the kernel to report the agent's death. */
const KILL_GRACE_MS = 5_000;
/** After the agent exited on pipes, how long to wait for its output streams to drain. */
const DRAIN_TIMEOUT_MS = 1_000;

type FailCode = "PTY_UNAVAILABLE" | "SPAWN_FAILED" | "INVALID_ARGUMENT";

class HostFailure extends Error {
  constructor(
    readonly code: FailCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// ---- the agent, on a pty or on pipes -------------------------------------------------

interface Agent {
  readonly pid: number;
  readonly pty: boolean;
  write(data: string): void;
  resize(cols: number, rows: number): void;
  /** Resolves once every byte of output the agent wrote has been delivered. */
  drained(): Promise<void>;
}

interface AgentEvents {
  output(data: string): void;
  exit(code: number | null, signal: string | null): void;
}

interface PtyModule {
  spawn(
    file: string,
    args: string[],
    options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string> },
  ): {
    pid: number;
    onData(listener: (data: string) => void): unknown;
    onExit(listener: (event: { exitCode: number; signal?: number }) => void): unknown;
    write(data: string): void;
    resize(cols: number, rows: number): void;
  };
}

function loadPty(): { module: PtyModule } | { error: PtyErrorInfo } {
  const configured = process.env.TROUPE_PTY_MODULE;
  const name = configured && configured.trim() !== "" ? configured : "@lydell/node-pty";
  const target = name.startsWith(".") ? resolvePath(name) : name;
  try {
    const require = createRequire(import.meta.url);
    const loaded = require(target) as Partial<PtyModule>;
    if (typeof loaded?.spawn !== "function") throw new Error(`${target} does not export spawn()`);
    return { module: loaded as PtyModule };
  } catch (error) {
    const abi = process.versions.modules ?? "unknown";
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    const packageName = name.startsWith("@lydell/") || !isAbsolute(target) ? name : "@lydell/node-pty";
    return {
      error: {
        code: "PTY_UNAVAILABLE",
        message:
          `node-pty could not be loaded by Node ${process.version} (ABI ${abi}): ${reason}. ` +
          `Run \`npm rebuild ${packageName}\` with ${process.execPath}, or spawn with pty: "auto" to fall back to pipes.`,
        abi,
        execPath: process.execPath,
      },
    };
  }
}

function spawnOnPty(ptyModule: PtyModule, file: string, spec: PtyHostSpec, size: { cols: number; rows: number }, events: AgentEvents): Agent {
  let term: ReturnType<PtyModule["spawn"]>;
  try {
    term = ptyModule.spawn(file, spec.cmd.slice(1), {
      name: spec.env.TERM ?? "xterm-256color",
      cols: size.cols,
      rows: size.rows,
      cwd: spec.cwd,
      env: spec.env,
    });
  } catch (error) {
    throw new HostFailure("SPAWN_FAILED", `Could not start ${JSON.stringify(spec.cmd[0])} on a pty: ${errorText(error)}`, { cmd: spec.cmd });
  }
  term.onData((data) => events.output(data));
  // node-pty reports a death by signal as (exitCode 0, signal n).
  term.onExit(({ exitCode, signal }) => events.exit(signal ? null : exitCode, signal ? signalName(signal) : null));
  return {
    pid: term.pid,
    pty: true,
    write: (data) => term.write(data),
    resize: (cols, rows) => term.resize(cols, rows),
    // node-pty emits onExit only after its read side closed.
    drained: () => Promise.resolve(),
  };
}

async function spawnOnPipes(file: string, spec: PtyHostSpec, events: AgentEvents): Promise<Agent> {
  // Loaded only on this path: it costs the pty path ~1 MB of RSS for nothing.
  const { spawn: spawnChild } = await import("node:child_process");
  // detached: the agent leads its own session and process group, as on a pty.
  const child: ChildProcess = spawnChild(file, spec.cmd.slice(1), {
    argv0: spec.cmd[0],
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => reject(new HostFailure("SPAWN_FAILED", `Could not start ${JSON.stringify(spec.cmd[0])}: ${errorText(error)}`, { cmd: spec.cmd })));
  });
  child.on("error", (error) => hostLog("warn", "agent process error", { err: errorText(error) }));
  child.stdin!.on("error", (error) => hostLog("warn", "agent stdin error", { err: errorText(error) }));
  let open = 2;
  let onDrained: (() => void) | null = null;
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (data: string) => events.output(data));
    stream.on("close", () => {
      if (--open === 0) onDrained?.();
    });
  }
  child.on("exit", (code, signal) => events.exit(signal ? null : code, signal ?? null));
  return {
    pid: child.pid!,
    pty: false,
    write: (data) => {
      child.stdin!.write(data);
    },
    resize: () => undefined,
    drained: () =>
      open === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
            onDrained = () => {
              clearTimeout(timer);
              resolve();
            };
          }),
  };
}

// ---- process tree ----------------------------------------------------------------------

interface ProcRef {
  pid: number;
  start: number | null;
}

/** Processes in the agent's session or process group (both are the agent's pid). */
function sessionMembers(leader: number): number[] {
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
function snapshotTree(pid: number): ProcRef[] {
  const pids = new Set([pid, ...descendantPids(pid), ...sessionMembers(pid)]);
  pids.delete(process.pid);
  return [...pids].map((p) => ({ pid: p, start: processStartTime(p) }));
}

function signalRefs(group: number, refs: ProcRef[], signal: NodeJS.Signals): void {
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

// ---- logging ---------------------------------------------------------------------------

let logFd: number | null = null;
let logContext: Record<string, unknown> = {};

function hostLog(level: "debug" | "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
  if (logFd === null) return;
  try {
    writeSync(logFd, `${JSON.stringify({ time: new Date().toISOString(), level, pid: process.pid, ...logContext, msg, ...fields })}\n`);
  } catch {
    // logging must never take the host down
  }
}

// ---- the host ----------------------------------------------------------------------------

interface Conn {
  socket: Socket;
  decoder: LineDecoder;
  subscribed: boolean;
}

interface StopWaiter {
  id: unknown;
  conn: Conn;
}

class PtyHost {
  private agent: Agent | null = null;
  private agentStart: number | null = null;
  private readonly startedAt = Date.now();
  private exit: ExitStatus | null = null;
  private exiting = false;
  private collected = false;
  private shuttingDown = false;
  private readonly ring: ScrollbackRing;
  private transcript: WriteStream | null = null;
  private server: Server | null = null;
  private socketIno: number | null = null;
  private readonly conns = new Set<Conn>();
  private cols: number;
  private rows: number;
  private ptyError: PtyErrorInfo | null = null;
  /** The tree as it was when a stop or tree signal began: killed too when the agent exits. */
  private snapshot: ProcRef[] = [];
  private stopWaiters: StopWaiter[] = [];
  private stopTimers: NodeJS.Timeout[] = [];
  private collectTimer: NodeJS.Timeout | null = null;
  private readonly hostStartTime = processStartTime(process.pid);

  constructor(private readonly spec: PtyHostSpec) {
    this.ring = new ScrollbackRing(spec.scrollbackBytes ?? DEFAULT_SCROLLBACK_BYTES);
    this.cols = spec.cols ?? 120;
    this.rows = spec.rows ?? 40;
  }

  async start(): Promise<ReadyMessage> {
    const spec = this.spec;
    const file = resolveCommand(spec);
    let ptyModule: PtyModule | null = null;
    if (spec.pty !== "off") {
      const loaded = loadPty();
      if ("error" in loaded) {
        if (spec.pty === "on") throw new HostFailure("PTY_UNAVAILABLE", loaded.error.message, { ...loaded.error });
        this.ptyError = loaded.error;
        hostLog("warn", "node-pty unavailable: falling back to pipes", { ptyError: loaded.error });
      } else {
        ptyModule = loaded.module;
      }
    }
    mkdirSync(dirname(spec.transcriptPath), { recursive: true, mode: 0o700 });
    this.transcript = createWriteStream(spec.transcriptPath, { flags: "a", mode: 0o600 });
    this.transcript.on("error", (error) => {
      hostLog("error", "transcript write failed; transcript disabled", { err: errorText(error) });
      this.transcript = null;
    });
    await this.listen();
    const events: AgentEvents = {
      output: (data) => this.onOutput(data),
      exit: (code, signal) => void this.onAgentExit(code, signal),
    };
    this.agent = ptyModule ? spawnOnPty(ptyModule, file, spec, { cols: this.cols, rows: this.rows }, events) : await spawnOnPipes(file, spec, events);
    this.agentStart = processStartTime(this.agent.pid);
    logContext = { ...logContext, agentPid: this.agent.pid };
    hostLog("info", "agent started", { cmd: spec.cmd, cwd: spec.cwd, pty: this.agent.pty, agentStartTime: this.agentStart });
    return {
      ok: true,
      hostPid: process.pid,
      hostStartTime: this.hostStartTime,
      pid: this.agent.pid,
      pidStartTime: this.agentStart,
      pty: this.agent.pty,
      ptyError: this.ptyError,
      socketPath: spec.socketPath,
    };
  }

  /** Undo a start that failed: no agent, no socket left behind. */
  abortStart(): void {
    if (this.agent) {
      const refs = snapshotTree(this.agent.pid);
      signalRefs(this.agent.pid, refs, "SIGKILL");
    }
    this.closeServer();
  }

  // ---- socket ----

  private async listen(): Promise<void> {
    const path = this.spec.socketPath;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    await assertSocketFree(path);
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(new HostFailure("SPAWN_FAILED", `Could not listen on ${path}: ${errorText(error)}`, { socketPath: path })));
      // bind() happens synchronously inside listen(): the socket file is created owner-only.
      const previous = process.umask(0o177);
      try {
        server.listen(path, () => resolve());
      } finally {
        process.umask(previous);
      }
    });
    server.on("error", (error) => hostLog("error", "socket server error", { err: errorText(error) }));
    chmodSync(path, 0o600);
    this.socketIno = lstatSync(path).ino;
  }

  private closeServer(): void {
    this.server?.close();
    this.server = null;
    if (this.socketIno === null) return;
    try {
      // Only our own socket file: never one a later host made at the same path.
      if (lstatSync(this.spec.socketPath).ino === this.socketIno) unlinkSync(this.spec.socketPath);
    } catch {
      // already gone
    }
    this.socketIno = null;
  }

  private onConnection(socket: Socket): void {
    const conn: Conn = { socket, decoder: new LineDecoder(), subscribed: false };
    this.conns.add(conn);
    socket.on("data", (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = conn.decoder.push(chunk);
      } catch (error) {
        hostLog("warn", "dropping client: bad framing", { err: errorText(error) });
        socket.destroy();
        return;
      }
      for (const line of lines) {
        if (socket.destroyed) return;
        try {
          this.onFrame(conn, line);
        } catch (error) {
          hostLog("error", "frame handling failed", { err: errorText(error) });
        }
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.conns.delete(conn));
  }

  private send(conn: Conn, frame: HostFrame): void {
    const socket = conn.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > MAX_CLIENT_BACKLOG) {
      hostLog("warn", "dropping a client that does not read its output");
      socket.destroy();
      return;
    }
    socket.write(encodeFrame(frame));
  }

  private reply(conn: Conn, id: unknown, result: Record<string, unknown> = {}): void {
    if (id === undefined || id === null) return;
    this.send(conn, { type: "reply", id: id as number, ok: true, ...result });
  }

  private fail(conn: Conn, id: unknown, code: string, message: string): void {
    if (id === undefined || id === null) {
      hostLog("warn", "request refused", { code, message });
      return;
    }
    this.send(conn, { type: "reply", id: id as number, ok: false, error: { code, message } });
  }

  private onFrame(conn: Conn, line: string): void {
    const frame = parseFrame(line);
    if (!frame) {
      hostLog("warn", "ignoring a line that is not a frame");
      return;
    }
    const id = frame.id;
    const agent = this.agent;
    switch (frame.type) {
      case "hello": {
        this.send(conn, { type: "identity", ...(id !== undefined ? { id: id as number } : {}), ...this.identity() });
        this.send(conn, { type: "scrollback", data: this.ring.toString() });
        conn.subscribed = true;
        return;
      }
      case "input": {
        if (typeof frame.data !== "string") return this.fail(conn, id, "INVALID_ARGUMENT", "input needs a string `data`");
        if (!agent || this.exit || this.exiting) return this.fail(conn, id, "AGENT_EXITED", "The agent has exited; input was not delivered.");
        agent.write(frame.data);
        return this.reply(conn, id);
      }
      case "resize": {
        const { cols, rows } = frame;
        if (!isDimension(cols) || !isDimension(rows)) return this.fail(conn, id, "INVALID_ARGUMENT", "resize needs integer `cols` and `rows` between 1 and 10000");
        if (!agent || this.exit || this.exiting) return this.fail(conn, id, "AGENT_EXITED", "The agent has exited.");
        this.cols = cols;
        this.rows = rows;
        try {
          agent.resize(cols, rows);
        } catch (error) {
          return this.fail(conn, id, "RESIZE_FAILED", errorText(error));
        }
        return this.reply(conn, id);
      }
      case "signal": {
        const signal = normalizeSignal(frame.signal);
        if (!signal) return this.fail(conn, id, "INVALID_ARGUMENT", `Unknown signal ${JSON.stringify(frame.signal)}.`);
        if (!agent || this.exit || this.exiting) return this.fail(conn, id, "AGENT_EXITED", "The agent has exited.");
        if (frame.tree === true) {
          this.rememberTree();
          signalRefs(agent.pid, this.snapshot, signal);
        } else {
          try {
            process.kill(agent.pid, signal);
          } catch (error) {
            return this.fail(conn, id, "SIGNAL_FAILED", errorText(error));
          }
        }
        hostLog("info", "signal sent", { signal, tree: frame.tree === true });
        return this.reply(conn, id);
      }
      case "stop": {
        const timeout = frame.killTimeoutMs === undefined ? DEFAULT_KILL_TIMEOUT_MS : frame.killTimeoutMs;
        if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0 || timeout > 3_600_000) {
          return this.fail(conn, id, "INVALID_ARGUMENT", "stop needs `killTimeoutMs` between 0 and 3600000");
        }
        if (this.exit) return this.reply(conn, id, { exit: this.exit });
        this.stopWaiters.push({ id, conn });
        this.stop(timeout);
        return;
      }
      case "collect": {
        if (!this.exit) return this.fail(conn, id, "NOT_EXITED", "The agent is still running; stop it before collecting its exit status.");
        this.reply(conn, id, { exit: this.exit });
        this.collected = true;
        hostLog("info", "exit status collected");
        void this.shutdown("collected");
        return;
      }
      case "status":
        return this.reply(conn, id, { status: this.status() });
      default:
        return this.fail(conn, id, "UNKNOWN_FRAME", `Unknown frame type ${JSON.stringify(frame.type)}.`);
    }
  }

  private identity(): HostIdentity {
    return {
      builderId: this.spec.builderId,
      name: this.spec.name,
      hostPid: process.pid,
      hostStartTime: this.hostStartTime,
      pid: this.agent?.pid ?? 0,
      pidStartTime: this.agentStart,
      pty: this.agent?.pty ?? false,
      ptyError: this.ptyError,
      startedAt: this.startedAt,
      exit: this.exit,
      protocol: PROTOCOL_VERSION,
    };
  }

  private status(): HostStatus {
    return {
      ...this.identity(),
      cols: this.cols,
      rows: this.rows,
      clients: this.conns.size,
      scrollbackBytes: this.ring.bytes,
      transcriptPath: this.spec.transcriptPath,
      collected: this.collected,
    };
  }

  // ---- agent ----

  private onOutput(data: string): void {
    this.ring.push(data);
    this.transcript?.write(data);
    for (const conn of this.conns) if (conn.subscribed) this.send(conn, { type: "output", data });
  }

  private rememberTree(): void {
    if (!this.agent) return;
    const known = new Set(this.snapshot.map((ref) => ref.pid));
    for (const ref of snapshotTree(this.agent.pid)) if (!known.has(ref.pid)) this.snapshot.push(ref);
  }

  /** SIGTERM to the agent's whole tree (snapshotted first), SIGKILL after `killTimeoutMs`. */
  stop(killTimeoutMs: number): void {
    const agent = this.agent;
    if (!agent || this.exit || this.exiting || this.stopTimers.length > 0) return;
    this.rememberTree();
    hostLog("info", "stopping the agent", { killTimeoutMs, tree: this.snapshot.map((ref) => ref.pid) });
    signalRefs(agent.pid, this.snapshot, "SIGTERM");
    this.stopTimers.push(
      setTimeout(() => {
        if (this.exit) return;
        this.rememberTree();
        hostLog("warn", "agent ignored SIGTERM: sending SIGKILL", { tree: this.snapshot.map((ref) => ref.pid) });
        signalRefs(agent.pid, this.snapshot, "SIGKILL");
        this.stopTimers.push(
          setTimeout(() => {
            if (this.exit) return;
            hostLog("error", "agent survived SIGKILL");
            for (const waiter of this.stopWaiters.splice(0)) this.fail(waiter.conn, waiter.id, "STOP_FAILED", `The agent (pid ${agent.pid}) did not die after SIGKILL.`);
          }, KILL_GRACE_MS),
        );
      }, killTimeoutMs),
    );
  }

  private async onAgentExit(code: number | null, signal: string | null): Promise<void> {
    const agent = this.agent;
    if (!agent || this.exit || this.exiting) return;
    this.exiting = true;
    // No survivors: whatever is left of its group, its session and the tree we knew.
    signalRefs(agent.pid, [...this.snapshot, ...snapshotTree(agent.pid)], "SIGKILL");
    await agent.drained();
    const exit: ExitStatus = { code, signal, at: Date.now() };
    this.exit = exit;
    for (const timer of this.stopTimers) clearTimeout(timer);
    hostLog("info", "agent exited", { code, signal });
    writeExitStatus(this.spec, exit);
    for (const conn of this.conns) if (conn.subscribed) this.send(conn, { type: "exit", ...exit });
    for (const waiter of this.stopWaiters.splice(0)) this.reply(waiter.conn, waiter.id, { exit });
    if (!this.shuttingDown) {
      const timeout = this.spec.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
      this.collectTimer = setTimeout(() => void this.shutdown("nobody collected the exit status"), timeout);
    }
  }

  /** Close the socket, flush the transcript and every client, then exit the process. */
  async shutdown(reason: string): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.collectTimer) clearTimeout(this.collectTimer);
    hostLog("info", "host exiting", { reason });
    this.closeServer();
    const closing = [...this.conns].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.socket.destroyed) return resolve();
          conn.socket.once("close", () => resolve());
          conn.socket.end();
        }),
    );
    const transcript = this.transcript;
    if (transcript) closing.push(new Promise<void>((resolve) => transcript.end(() => resolve())));
    await Promise.race([Promise.all(closing), delay(1_000)]);
    for (const conn of this.conns) conn.socket.destroy();
    process.exit(0);
  }

  /** The host was told to go (SIGTERM/SIGINT): stop the agent, then exit without waiting for a collect. */
  async terminate(signal: string): Promise<void> {
    if (this.shuttingDown) return;
    hostLog("info", "host received a termination signal", { signal });
    if (this.agent && !this.exit) {
      this.stop(2_000);
      const deadline = Date.now() + 2_000 + KILL_GRACE_MS;
      while (!this.exit && Date.now() < deadline) await delay(20);
    }
    await this.shutdown(`received ${signal}`);
  }
}

// ---- helpers ----------------------------------------------------------------------------

function resolveCommand(spec: PtyHostSpec): string {
  let cwdStat;
  try {
    cwdStat = statSync(spec.cwd);
  } catch {
    throw new HostFailure("SPAWN_FAILED", `The working directory ${spec.cwd} does not exist.`, { cwd: spec.cwd });
  }
  if (!cwdStat.isDirectory()) throw new HostFailure("SPAWN_FAILED", `The working directory ${spec.cwd} is not a directory.`, { cwd: spec.cwd });
  const name = spec.cmd[0]!;
  const candidates = name.includes("/")
    ? [resolvePath(spec.cwd, name)]
    : (spec.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").map((dir) => resolvePath(spec.cwd, dir === "" ? "." : dir, name));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new HostFailure(
    "SPAWN_FAILED",
    name.includes("/")
      ? `Command not found or not executable: ${name} (in ${spec.cwd}).`
      : `Command not found: ${name} is not an executable file in any directory of the agent's PATH (${spec.env.PATH ?? "unset"}).`,
    { cmd: spec.cmd },
  );
}

/** Refuses to replace a socket another live host still serves; removes a stale one. */
async function assertSocketFree(path: string): Promise<void> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new HostFailure("SPAWN_FAILED", `${path} exists and is not a socket; refusing to replace it.`, { socketPath: path });
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
  if (live) throw new HostFailure("SPAWN_FAILED", `A pty host already serves ${path}; adopt it instead of starting a second agent.`, { socketPath: path });
  unlinkSync(path);
}

function writeExitStatus(spec: PtyHostSpec, exit: ExitStatus): void {
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

function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

function normalizeSignal(value: unknown): NodeJS.Signals | null {
  if (typeof value !== "string") return null;
  const upper = value.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  return name in osConstants.signals ? (name as NodeJS.Signals) : null;
}

function isDimension(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 10_000;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function validateSpec(value: unknown): PtyHostSpec {
  const spec = value as Partial<PtyHostSpec> | null;
  const bad = (what: string): never => {
    throw new HostFailure("INVALID_ARGUMENT", `Invalid pty host spec: ${what}.`);
  };
  if (typeof spec !== "object" || spec === null) return bad("not an object");
  for (const key of ["builderId", "name", "cwd", "socketPath", "transcriptPath", "exitStatusPath", "logPath"] as const) {
    if (typeof spec[key] !== "string" || spec[key] === "") bad(`${key} must be a non-empty string`);
  }
  if (!Array.isArray(spec.cmd) || spec.cmd.length === 0 || !spec.cmd.every((arg) => typeof arg === "string") || spec.cmd[0] === "") bad("cmd must be a non-empty array of strings");
  if (spec.pty !== "auto" && spec.pty !== "on" && spec.pty !== "off") bad('pty must be "auto", "on" or "off"');
  if (typeof spec.env !== "object" || spec.env === null || !Object.values(spec.env).every((v) => typeof v === "string")) bad("env must map names to strings");
  if (spec.scrollbackBytes !== undefined && !(Number.isInteger(spec.scrollbackBytes) && spec.scrollbackBytes >= 1 && spec.scrollbackBytes <= MAX_SCROLLBACK_BYTES)) bad("scrollbackBytes out of range");
  if (spec.collectTimeoutMs !== undefined && !(Number.isInteger(spec.collectTimeoutMs) && spec.collectTimeoutMs >= 1 && spec.collectTimeoutMs <= 2 ** 31 - 1)) bad("collectTimeoutMs out of range");
  for (const key of ["cols", "rows"] as const) if (spec[key] !== undefined && !isDimension(spec[key])) bad(`${key} out of range`);
  return spec as PtyHostSpec;
}

function readSpecText(): string {
  const file = process.argv.slice(2).find((arg, index, all) => !arg.startsWith("--") && !(index > 0 && all[index - 1]!.startsWith("--")));
  if (file) {
    const text = readFileSync(file, "utf8");
    try {
      unlinkSync(file); // it may hold secrets (the agent's environment)
    } catch {
      // the launcher removes it too
    }
    return text;
  }
  // A blocking read of fd 0 up to EOF: cheaper than process.stdin's stream machinery.
  return readFileSync(0, "utf8");
}

function sendReady(message: ReadyMessage): void {
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

async function main(): Promise<void> {
  // The launcher may die or close its terminal: neither may take the agent with it.
  process.on("SIGHUP", () => hostLog("info", "ignored SIGHUP"));
  let host: PtyHost | null = null;
  process.on("uncaughtException", (error) => hostLog("error", "uncaught exception", { err: errorText(error), stack: error.stack }));
  process.on("unhandledRejection", (error) => hostLog("error", "unhandled rejection", { err: errorText(error) }));
  try {
    const text = readSpecText();
    // A spare host (booted ahead of need) whose owner went away before giving it work.
    if (text === "" && process.argv.includes("--spare-for")) process.exit(0);
    const spec = validateSpec(JSON.parse(text));
    mkdirSync(dirname(spec.logPath), { recursive: true, mode: 0o700 });
    logFd = openSync(spec.logPath, "a", 0o600);
    logContext = { builderId: spec.builderId, name: spec.name };
    host = new PtyHost(spec);
    const started = host;
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => void started.terminate(signal));
    const ready = await host.start();
    sendReady(ready);
  } catch (error) {
    const failure =
      error instanceof HostFailure
        ? error
        : new HostFailure(error instanceof SyntaxError ? "INVALID_ARGUMENT" : "SPAWN_FAILED", `The pty host could not start: ${errorText(error)}`);
    hostLog("error", "start failed", { code: failure.code, err: failure.message });
    host?.abortStart();
    sendReady({ ok: false, error: { code: failure.code, message: failure.message, details: failure.details } });
    process.exit(1);
  }
}

void main();
