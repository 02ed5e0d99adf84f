/**
 * The pty host (DESIGN §5): one small detached process per builder that owns
 * the agent's terminal and outlives any supervisor.
 *
 *   node dist/actors/pty-host/main.js [--socket <path>] [--spare-for <run dir>]
 *
 * The spec (a PtyHostSpec as JSON) is read from standard input (the flags only
 * make the process recognisable in `ps`). When the agent runs and the socket
 * listens, one JSON line (a ReadyMessage) goes to fd 3, which is then closed:
 * after that the host never writes to its launcher again.
 *
 * Budget: ≤ 48 MB RSS. Import node builtins only (and node-pty, lazily).
 */
import { createWriteStream, mkdirSync, openSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { processStartTime, processTree, signalTree, type ProcessRef } from "../../shared/proc.js";
import { terminateTree } from "../../shared/terminate.js";
import { settlesWithin } from "../../shared/wait.js";
import { DEFAULT_COLLECT_TIMEOUT_MS, DEFAULT_SCROLLBACK_BYTES, PROTOCOL_VERSION, parseFrame, type ExitStatus, type HostIdentity, type HostStatus, type PtyErrorInfo, type PtyHostSpec, type ReadyMessage } from "./protocol.js";
import { ScrollbackRing } from "./ring.js";
import { awaitExec, loadPty, resolveCommand, spawnOnPipes, spawnOnPty, type Agent, type AgentEvents, type PtyModule } from "./agent.js";
import { failureReport, hostFailure } from "./failure.js";
import { errorText, isDimension, normalizeSignal, readSpecText, sendReady, validateSpec, writeExitStatus } from "./host-io.js";
import { configureHostLog, hostLog } from "./host-log.js";
import { HostServer, type Conn } from "./host-server.js";

const DEFAULT_KILL_TIMEOUT_MS = 5_000;
/** After SIGKILL, how long to wait for the kernel to report the agent's death. */
const KILL_GRACE_MS = 5_000;

// ---- the host ----------------------------------------------------------------------------

/**
 * The agent's life as the host sees it, one field for all of it. It only moves
 * forward, through `enter()`; the host process's own teardown (`shutdown`) is
 * separate, since it can begin in any phase (a SIGTERM to the host).
 *   starting → running (the agent was spawned) → stopping (SIGTERM sent)
 *   → exiting (exit seen, output draining) → exited (status kept) → collected
 */
type HostPhase = "starting" | "running" | "stopping" | "exiting" | "exited" | "collected";

const NEXT_PHASES: Record<HostPhase, readonly HostPhase[]> = {
  starting: ["running"],
  running: ["stopping", "exiting"],
  stopping: ["exiting"],
  exiting: ["exited"],
  exited: ["collected"],
  collected: [],
};

interface StopWaiter {
  id: unknown;
  conn: Conn;
}

class PtyHost {
  private phase: HostPhase = "starting";
  private agent: Agent | null = null;
  private agentStart: number | null = null;
  private readonly startedAt = Date.now();
  /** Set when the phase becomes "exited". */
  private exit: ExitStatus | null = null;
  /** Resolves when the agent's exit is seen (ends a stop's wait), and when its status is recorded. */
  private readonly exitSeen = deferred();
  private readonly exitRecorded = deferred();
  /** The host process's teardown, once begun. */
  private closing: Promise<void> | null = null;
  private readonly ring: ScrollbackRing;
  private transcript: WriteStream | null = null;
  private readonly server: HostServer;
  private cols: number;
  private rows: number;
  private ptyError: PtyErrorInfo | null = null;
  /** The tree as it was when a stop or tree signal began: killed too when the agent exits. */
  private snapshot: ProcessRef[] = [];
  private stopWaiters: StopWaiter[] = [];
  private collectTimer: NodeJS.Timeout | null = null;
  private readonly hostStartTime = processStartTime(process.pid);

  constructor(private readonly spec: PtyHostSpec) {
    this.ring = new ScrollbackRing(spec.scrollbackBytes ?? DEFAULT_SCROLLBACK_BYTES);
    this.cols = spec.cols ?? 120;
    this.rows = spec.rows ?? 40;
    this.server = new HostServer(spec.socketPath, (conn, line) => this.onFrame(conn, line));
  }

  async start(): Promise<ReadyMessage> {
    const spec = this.spec;
    const file = resolveCommand(spec);
    let ptyModule: PtyModule | null = null;
    if (spec.pty !== "off") {
      const loaded = loadPty();
      if ("error" in loaded) {
        if (spec.pty === "on") throw hostFailure("PTY_UNAVAILABLE", loaded.error.message, { ...loaded.error });
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
    await this.server.listen();
    const events: AgentEvents = {
      output: (data) => this.onOutput(data),
      exit: (code, signal) => void this.onAgentExit(code, signal),
    };
    this.agent = ptyModule ? spawnOnPty(ptyModule, file, spec, { cols: this.cols, rows: this.rows }, events) : await spawnOnPipes(file, spec, events);
    this.enter("running");
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
    if (this.agent) signalTree(this.treeNow(this.agent), "SIGKILL");
    this.server.close();
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
        this.server.send(conn, { type: "identity", ...(id !== undefined ? { id: id as number } : {}), ...this.identity() });
        this.server.send(conn, { type: "scrollback", data: this.ring.toString() });
        conn.subscribed = true;
        return;
      }
      case "input": {
        if (typeof frame.data !== "string") return this.server.fail(conn, id, "INVALID_ARGUMENT", "input needs a string `data`");
        if (!agent || !this.agentRuns()) return this.server.fail(conn, id, "AGENT_EXITED", "The agent has exited; input was not delivered.");
        agent.write(frame.data);
        return this.server.reply(conn, id);
      }
      case "resize": {
        const { cols, rows } = frame;
        if (!isDimension(cols) || !isDimension(rows)) return this.server.fail(conn, id, "INVALID_ARGUMENT", "resize needs integer `cols` and `rows` between 1 and 10000");
        if (!agent || !this.agentRuns()) return this.server.fail(conn, id, "AGENT_EXITED", "The agent has exited.");
        this.cols = cols;
        this.rows = rows;
        try {
          agent.resize(cols, rows);
        } catch (error) {
          return this.server.fail(conn, id, "RESIZE_FAILED", errorText(error));
        }
        return this.server.reply(conn, id);
      }
      case "signal": {
        const signal = normalizeSignal(frame.signal);
        if (!signal) return this.server.fail(conn, id, "INVALID_ARGUMENT", `Unknown signal ${JSON.stringify(frame.signal)}.`);
        if (!agent || !this.agentRuns()) return this.server.fail(conn, id, "AGENT_EXITED", "The agent has exited.");
        if (frame.tree === true) {
          this.rememberTree(agent);
          signalTree(this.snapshot, signal);
        } else {
          try {
            process.kill(agent.pid, signal);
          } catch (error) {
            return this.server.fail(conn, id, "SIGNAL_FAILED", errorText(error));
          }
        }
        hostLog("info", "signal sent", { signal, tree: frame.tree === true });
        return this.server.reply(conn, id);
      }
      case "stop": {
        const timeout = frame.killTimeoutMs === undefined ? DEFAULT_KILL_TIMEOUT_MS : frame.killTimeoutMs;
        if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0 || timeout > 3_600_000) {
          return this.server.fail(conn, id, "INVALID_ARGUMENT", "stop needs `killTimeoutMs` between 0 and 3600000");
        }
        if (this.exit) return this.server.reply(conn, id, { exit: this.exit });
        this.stopWaiters.push({ id, conn });
        this.stop(timeout);
        return;
      }
      case "collect": {
        if (!this.exit) return this.server.fail(conn, id, "NOT_EXITED", "The agent is still running; stop it before collecting its exit status.");
        this.server.reply(conn, id, { exit: this.exit });
        if (this.enter("collected")) hostLog("info", "exit status collected");
        void this.shutdown("collected");
        return;
      }
      case "status":
        return this.server.reply(conn, id, { status: this.status() });
      default:
        return this.server.fail(conn, id, "UNKNOWN_FRAME", `Unknown frame type ${JSON.stringify(frame.type)}.`);
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
      clients: this.server.conns.size,
      scrollbackBytes: this.ring.bytes,
      transcriptPath: this.spec.transcriptPath,
      collected: this.phase === "collected",
    };
  }

  // ---- agent ----

  private onOutput(data: string): void {
    this.ring.push(data);
    this.transcript?.write(data);
    this.server.broadcast({ type: "output", data });
  }

  // ---- lifecycle ----

  /** Moves to `next` if the lifecycle allows it from here; false (and nothing changes) if not. */
  private enter(next: HostPhase): boolean {
    if (!NEXT_PHASES[this.phase].includes(next)) return false;
    this.phase = next;
    return true;
  }

  /** Input, resizes and signals reach the agent only while it runs (a stop in progress included). */
  private agentRuns(): boolean {
    return this.phase === "running" || this.phase === "stopping";
  }

  /** The agent's tree now, the agent itself checked against its recorded start time. */
  private treeNow(agent: Agent): ProcessRef[] {
    return processTree(agent.pid).map((ref) => (ref.pid === agent.pid ? { pid: agent.pid, start: this.agentStart } : ref));
  }

  private rememberTree(agent: Agent): void {
    const known = new Set(this.snapshot.map((ref) => ref.pid));
    for (const ref of this.treeNow(agent)) if (!known.has(ref.pid)) this.snapshot.push(ref);
  }

  /** SIGTERM to the agent's whole tree (snapshotted first), SIGKILL after `killTimeoutMs`. */
  stop(killTimeoutMs: number): void {
    const agent = this.agent;
    if (!agent || !this.enter("stopping")) return;
    this.rememberTree(agent);
    hostLog("info", "stopping the agent", { killTimeoutMs, tree: this.snapshot.map((ref) => ref.pid) });
    const stopped = terminateTree(agent.pid, {
      startTime: this.agentStart,
      graceMs: killTimeoutMs,
      killWaitMs: KILL_GRACE_MS,
      exited: this.exitSeen.promise,
      known: this.snapshot,
      onKill: () => {
        this.rememberTree(agent);
        hostLog("warn", "agent ignored SIGTERM: sending SIGKILL", { tree: this.snapshot.map((ref) => ref.pid) });
      },
    });
    void stopped.then((outcome) => {
      if (outcome !== "survived" || this.exit) return;
      hostLog("error", "agent survived SIGKILL");
      for (const waiter of this.stopWaiters.splice(0)) this.server.fail(waiter.conn, waiter.id, "STOP_FAILED", `The agent (pid ${agent.pid}) did not die after SIGKILL.`);
    });
  }

  private async onAgentExit(code: number | null, signal: string | null): Promise<void> {
    const agent = this.agent;
    if (!agent || !this.enter("exiting")) return;
    this.exitSeen.resolve();
    // No survivors: whatever is left of its group, its session and the tree we knew.
    signalTree([...this.snapshot, ...this.treeNow(agent)], "SIGKILL");
    await agent.drained();
    const exit: ExitStatus = { code, signal, at: Date.now() };
    this.exit = exit;
    this.enter("exited");
    this.exitRecorded.resolve();
    hostLog("info", "agent exited", { code, signal });
    writeExitStatus(this.spec, exit);
    this.server.broadcast({ type: "exit", ...exit });
    for (const waiter of this.stopWaiters.splice(0)) this.server.reply(waiter.conn, waiter.id, { exit });
    if (!this.closing) {
      const timeout = this.spec.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;
      this.collectTimer = setTimeout(() => void this.shutdown("nobody collected the exit status"), timeout);
    }
  }

  /** Close the socket, flush the transcript and every client, then exit the process. */
  shutdown(reason: string): Promise<void> {
    this.closing ??= this.close(reason);
    return this.closing;
  }

  private async close(reason: string): Promise<void> {
    if (this.collectTimer) clearTimeout(this.collectTimer);
    hostLog("info", "host exiting", { reason });
    this.server.close();
    const transcript = this.transcript;
    const flushed = transcript ? new Promise<void>((resolve) => transcript.end(() => resolve())) : Promise.resolve();
    await settlesWithin(Promise.all([this.server.endAll(), flushed]), 1_000);
    this.server.destroyAll();
    process.exit(0);
  }

  /** The host was told to go (SIGTERM/SIGINT): stop the agent, then exit without waiting for a collect. */
  async terminate(signal: string): Promise<void> {
    if (this.closing) return;
    hostLog("info", "host received a termination signal", { signal });
    if (this.agent && !this.exit) {
      this.stop(2_000);
      await settlesWithin(this.exitRecorded.promise, 2_000 + KILL_GRACE_MS);
    }
    await this.shutdown(`received ${signal}`);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
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
    const failure = failureReport(error);
    hostLog("error", "start failed", { code: failure.error.code, err: failure.error.message });
    host?.abortStart();
    sendReady(failure);
    process.exit(1);
  }
}

void main();
