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
import { chmodSync, createWriteStream, lstatSync, mkdirSync, openSync, unlinkSync, type WriteStream } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { processStartTime } from "../../shared/proc.js";
import { DEFAULT_COLLECT_TIMEOUT_MS, DEFAULT_SCROLLBACK_BYTES, LineDecoder, PROTOCOL_VERSION, encodeFrame, parseFrame, type ExitStatus, type HostFrame, type HostIdentity, type HostStatus, type PtyErrorInfo, type PtyHostSpec, type ReadyMessage } from "./protocol.js";
import { ScrollbackRing } from "./ring.js";
import { awaitExec, loadPty, resolveCommand, spawnOnPipes, spawnOnPty, type Agent, type AgentEvents, type PtyModule } from "./agent.js";
import { HostFailure } from "./failure.js";
import { assertSocketFree, delay, errorText, isDimension, normalizeSignal, readSpecText, sendReady, validateSpec, writeExitStatus } from "./host-io.js";
import { configureHostLog, hostLog } from "./host-log.js";
import { signalRefs, snapshotTree, type ProcRef } from "./process-tree.js";

/** A client whose unsent output exceeds this is too slow: it is dropped, not buffered without bound. */
const MAX_CLIENT_BACKLOG = 8 * 1024 * 1024;
const DEFAULT_KILL_TIMEOUT_MS = 5_000;
/** After SIGKILL, how long to wait for the kernel to report the agent's death. */
const KILL_GRACE_MS = 5_000;

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
    if (this.agent.pty) await awaitExec(this.agent.pid);
    this.agentStart = processStartTime(this.agent.pid);
    configureHostLog({ context: { agentPid: this.agent.pid } });
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

async function main(): Promise<void> {
  // The launcher may die or close its terminal: neither may take the agent with it.
  process.on("SIGHUP", () => hostLog("info", "ignored SIGHUP"));
  let host: PtyHost | null = null;
  process.on("uncaughtException", (error) => hostLog("error", "uncaught exception", { err: errorText(error), stack: error.stack }));
  process.on("unhandledRejection", (error) => hostLog("error", "unhandled rejection", { err: errorText(error) }));
  try {
    // A spare loads node-pty (a few ms) before it waits, not after its work arrived.
    if (process.argv.includes("--spare-for")) loadPty();
    const text = readSpecText();
    // A spare host (booted ahead of need) whose owner went away before giving it work.
    if (text === "" && process.argv.includes("--spare-for")) process.exit(0);
    const spec = validateSpec(JSON.parse(text));
    mkdirSync(dirname(spec.logPath), { recursive: true, mode: 0o700 });
    configureHostLog({ fd: openSync(spec.logPath, "a", 0o600) });
    configureHostLog({ context: { builderId: spec.builderId, name: spec.name } });
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
