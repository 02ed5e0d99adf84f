/**
 * The pty host's agent lifecycle and requests (DESIGN §5); its entry point is
 * main.ts. The agent's output goes to the screen first (screen.ts) and to the
 * clients, the byte ring and the byte transcript once the screen has parsed
 * it, so all of them agree at every moment.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { processStartTime, processTree, signalTree, type ProcessRef } from "../../shared/proc.js";
import { settlesWithin } from "../../shared/wait.js";
import {
  DEFAULT_COLLECT_TIMEOUT_MS,
  DEFAULT_SCROLLBACK_BYTES,
  DEFAULT_SCROLLBACK_LINES,
  PROTOCOL_VERSION,
  parseFrame,
  textTranscriptPath,
  type ExitStatus,
  type HostIdentity,
  type HostStatus,
  type PtyErrorInfo,
  type PtyHostSpec,
  type ReadyMessage,
} from "./protocol.js";
import { ScrollbackRing } from "./ring.js";
import { awaitExec, loadPty, resolveCommand, spawnOnPipes, spawnOnPty, type Agent, type AgentEvents, type PtyModule } from "./agent.js";
import { hostFailure } from "./failure.js";
import { errorText, isDimension, normalizeSignal, writeExitStatus } from "./host-io.js";
import { configureHostLog, hostLog } from "./host-log.js";
import { HostServer, type Conn } from "./host-server.js";
import { Attachments } from "./clients.js";
import { Screen } from "./screen.js";
import { stopAgent } from "./stop.js";

const DEFAULT_KILL_TIMEOUT_MS = 5_000;
/** After SIGKILL, how long to wait for the kernel to report the agent's death. */
const KILL_GRACE_MS = 5_000;
/** Unparsed output above which the agent is paused until the screen catches up (a real terminal's flow control). */
const SCREEN_HIGH_WATER = 4 * 1024 * 1024;
const SCREEN_LOW_WATER = 1024 * 1024;
/** Parsed output is sent in frames of at most about this many characters during a flood. */
const SEND_BATCH_CHARS = 256 * 1024;

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

export class PtyHost {
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
  private screen: Screen | null = null;
  private attachments: Attachments | null = null;
  private paused = false;
  /** Output the screen has parsed, not yet sent (see onOutput). */
  private parsed: string[] = [];
  private parsedChars = 0;
  private sendScheduled = false;
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
    this.server = new HostServer(
      spec.socketPath,
      (conn, line) => this.onFrame(conn, line),
      (conn) => {
        if (!this.closing) this.attachments?.gone(conn);
      },
    );
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
    this.screen = new Screen({
      cols: this.cols,
      rows: this.rows,
      scrollbackLines: spec.scrollbackLines ?? DEFAULT_SCROLLBACK_LINES,
      convertEol: ptyModule === null,
      textTranscriptPath: textTranscriptPath(spec.transcriptPath),
    });
    const screen = this.screen;
    this.attachments = new Attachments(this.server, screen, this.ring, {
      size: () => ({ cols: this.cols, rows: this.rows }),
      resize: ({ cols, rows }) => {
        this.agent?.resize(cols, rows);
        this.cols = cols;
        this.rows = rows;
        screen.resize(cols, rows);
      },
      agentRuns: () => this.agentRuns(),
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
    // A handshake, a restore or a screen is computed from the screen: the clients must have been sent all of it.
    this.sendParsed();
    switch (frame.type) {
      case "hello":
        return this.attachments!.hello(conn, frame, this.identity());
      case "input": {
        if (typeof frame.data !== "string") return this.server.fail(conn, id, "INVALID_ARGUMENT", "input needs a string `data`");
        if (conn.readOnly) return this.server.fail(conn, id, "READ_ONLY", "This client attached read-only; its input is not delivered.");
        if (!agent || !this.agentRuns()) return this.server.fail(conn, id, "AGENT_EXITED", "The agent has exited; input was not delivered.");
        agent.write(frame.data);
        return this.server.reply(conn, id);
      }
      case "resize": {
        const { cols, rows } = frame;
        if (!isDimension(cols) || !isDimension(rows)) return this.server.fail(conn, id, "INVALID_ARGUMENT", "resize needs integer `cols` and `rows` between 1 and 10000");
        if (!agent || !this.agentRuns()) return this.server.fail(conn, id, "AGENT_EXITED", "The agent has exited.");
        try {
          this.attachments!.resized(conn, { cols, rows });
        } catch (error) {
          return this.server.fail(conn, id, "RESIZE_FAILED", errorText(error));
        }
        return this.server.reply(conn, id);
      }
      case "signal": {
        if (conn.readOnly) return this.server.fail(conn, id, "READ_ONLY", "This client attached read-only; it cannot signal the agent.");
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
        const hangup = frame.hangupTimeoutMs;
        if (!isDuration(timeout) || (hangup !== undefined && !isDuration(hangup))) {
          return this.server.fail(conn, id, "INVALID_ARGUMENT", "stop needs `killTimeoutMs` (and `hangupTimeoutMs`) between 0 and 3600000");
        }
        if (this.exit) return this.server.reply(conn, id, { exit: this.exit });
        this.stopWaiters.push({ id, conn });
        this.stop(timeout, hangup as number | undefined);
        return;
      }
      case "screen":
        return this.server.reply(conn, id, { screen: this.screen!.screenText() });
      case "restore":
        return this.server.reply(conn, id, { restore: this.screen!.restore(conn.kitty) });
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
      textTranscriptPath: textTranscriptPath(this.spec.transcriptPath),
      collected: this.phase === "collected",
    };
  }

  // ---- agent ----

  /**
   * Each read goes to the screen at once (its parser then runs without
   * pauses); what it has parsed goes to the clients, the ring and the byte
   * transcript in batches — at once when the screen has caught up, else every
   * 256 KiB or on the next turn — so a flood costs a few large frames and
   * appends instead of one per 4 KiB read.
   */
  private onOutput(data: string): void {
    const screen = this.screen!;
    screen.write(data, () => {
      this.parsed.push(data);
      this.parsedChars += data.length;
      if (screen.backlog === 0 || this.parsedChars >= SEND_BATCH_CHARS) this.sendParsed();
      else if (!this.sendScheduled) {
        this.sendScheduled = true;
        setImmediate(() => this.sendParsed());
      }
      if (this.paused && screen.backlog <= SCREEN_LOW_WATER) {
        this.paused = false;
        this.agent?.resume();
      }
    });
    if (!this.paused && screen.backlog > SCREEN_HIGH_WATER && this.agent) {
      this.paused = true;
      this.agent.pause();
    }
  }

  /** Sends what the screen has parsed and the clients have not seen yet: before anything computed from the screen. */
  private sendParsed(): void {
    this.sendScheduled = false;
    if (this.parsedChars === 0) return;
    const data = this.parsed.length === 1 ? this.parsed[0]! : this.parsed.join("");
    this.parsed = [];
    this.parsedChars = 0;
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

  /** SIGHUP (on a pty), then SIGTERM, to the agent's whole tree (snapshotted first), SIGKILL after `killTimeoutMs`. */
  stop(killTimeoutMs: number, hangupTimeoutMs?: number): void {
    const agent = this.agent;
    if (!agent || !this.enter("stopping")) return;
    this.rememberTree(agent);
    hostLog("info", "stopping the agent", { killTimeoutMs, hangup: agent.pty, tree: this.snapshot.map((ref) => ref.pid) });
    const stopped = stopAgent({
      pid: agent.pid,
      startTime: this.agentStart,
      killTimeoutMs,
      ...(hangupTimeoutMs !== undefined ? { hangupTimeoutMs } : {}),
      hangup: agent.pty,
      killWaitMs: KILL_GRACE_MS,
      exited: this.exitSeen.promise,
      known: () => this.snapshot,
      refresh: () => this.rememberTree(agent),
      onKill: () => {
        this.rememberTree(agent);
        hostLog("warn", "agent ignored SIGHUP and SIGTERM: sending SIGKILL", { tree: this.snapshot.map((ref) => ref.pid) });
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
    // Every byte it printed reaches the clients (and the final screen the text transcript) before its exit does.
    await this.screen!.finish();
    this.sendParsed();
    const exit: ExitStatus = { code, signal, at: Date.now() };
    this.exit = exit;
    this.enter("exited");
    this.exitRecorded.resolve();
    hostLog("info", "agent exited", { code, signal });
    writeExitStatus(this.spec, exit);
    for (const conn of this.server.conns) {
      if (conn.subscribed) this.server.send(conn, { type: "exit", ...exit, restore: this.screen!.restore(conn.kitty) });
    }
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

function isDuration(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 3_600_000;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

