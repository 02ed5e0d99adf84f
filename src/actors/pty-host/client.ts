import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import { TroupeError } from "../../shared/errors.js";
import { LineFramer } from "../../shared/lines.js";
import {
  MAX_HOST_FRAME_BYTES,
  PROTOCOL_VERSION,
  chunkText,
  encodeFrame,
  parseFrame,
  type ClientFrame,
  type ClientInfo,
  type ExitStatus,
  type HostIdentity,
  type HostStatus,
  type ReplyFrame,
  type ScreenSnapshot,
  type ScreenText,
} from "./protocol.js";

export interface ConnectOptions {
  /** How long the connection and handshake may take (default 5 s). */
  timeoutMs?: number;
  /** A name for this client, shown to the other clients (ClientInfo.client). */
  client?: string;
  /** Receive the agent's screen (`client.screen`) instead of the byte scrollback (`client.scrollback` is then ""). */
  screen?: boolean;
  /** This client's terminal size, counted before the screen is serialized: the pty takes the smallest client's size. */
  size?: { cols: number; rows: number };
  /** The host refuses this client's input and signals (READ_ONLY). */
  readOnly?: boolean;
}

/** Who is attached, as of the last `clients` frame. */
export interface AttachedClients {
  /** This client's own id in `clients`. */
  you: number;
  /** The pty's size: the smallest size any client reported. */
  cols: number;
  rows: number;
  clients: ClientInfo[];
}

export interface PtyHostClientEvents {
  /** Live terminal output (text). */
  output: (data: string) => void;
  /** The agent exited (broadcast once); `restore` undoes its modes in this client's terminal. */
  exit: (status: ExitStatus, restore: string) => void;
  /** The attached clients or the pty size changed. */
  clients: (clients: AttachedClients) => void;
  /** The connection closed (the host exited, or `close()` was called); `error` when it broke. */
  close: (error?: Error) => void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

type Pending = { resolve: (frame: ReplyFrame & { ok: true }) => void; reject: (error: Error) => void; type: string };

/**
 * A connection to one pty host. Obtain it with `connectPtyHost`: it has
 * already done the handshake, so `identity` and `scrollback` are set.
 * Listeners attached right after `await connectPtyHost(...)` miss nothing:
 * frames that follow the handshake are delivered on a later turn.
 */
export class PtyHostClient {
  /** The host's identity as of the handshake; `exit` is updated when the agent exits. */
  readonly identity: HostIdentity;
  /** The scrollback replayed at connect time (output before this client connected); "" when it asked for the screen. */
  readonly scrollback: string;
  /** The agent's screen at connect time, when asked for (`screen: true`): write `screen.data`, then the live output. */
  readonly screen: ScreenSnapshot | null;
  /** Who is attached (this client included) and the pty size; updated before each "clients" event. */
  attached: AttachedClients | null;
  /**
   * The last known bytes that undo the agent's modes in this client's
   * terminal: from the exit frame or the last `restoreSequence()`; "" before.
   */
  lastRestore = "";
  private readonly emitter = new EventEmitter();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedFlag = false;

  /** @internal use connectPtyHost */
  constructor(
    private readonly socket: Socket,
    identity: HostIdentity,
    scrollback: string,
    readonly socketPath: string,
    handshake: { screen: ScreenSnapshot | null; attached: AttachedClients | null } = { screen: null, attached: null },
  ) {
    this.identity = identity;
    this.scrollback = scrollback;
    this.screen = handshake.screen;
    this.attached = handshake.attached;
    // Without an "error" listener an EventEmitter throws; callers never have to add one.
    this.emitter.on("error", () => undefined);
  }

  /** True once the connection is gone. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** The agent's exit status once known, else null. */
  get exitStatus(): ExitStatus | null {
    return this.identity.exit;
  }

  on<E extends keyof PtyHostClientEvents>(event: E, listener: PtyHostClientEvents[E]): this {
    this.emitter.on(event, listener);
    return this;
  }

  once<E extends keyof PtyHostClientEvents>(event: E, listener: PtyHostClientEvents[E]): this {
    this.emitter.once(event, listener);
    return this;
  }

  off<E extends keyof PtyHostClientEvents>(event: E, listener: PtyHostClientEvents[E]): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** Types `data` into the agent's terminal (fire-and-forget; ignored once the agent exited). */
  write(data: string): void {
    for (const piece of chunkText(data)) this.send({ type: "input", data: piece });
  }

  /** Like `write`, but resolves once the host delivered it (rejects if the agent exited). */
  async input(data: string): Promise<void> {
    for (const piece of chunkText(data)) await this.request({ type: "input", data: piece });
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.request({ type: "resize", cols, rows });
  }

  /** Sends `signal` to the agent, or with `tree` to its process group and every descendant. */
  async signal(signal: NodeJS.Signals | string, options: { tree?: boolean } = {}): Promise<void> {
    await this.request({ type: "signal", signal, tree: options.tree === true });
  }

  /**
   * SIGTERM to the agent's whole tree, SIGKILL after `killTimeoutMs` (host
   * default 5 s); resolves with the exit status once the agent is gone.
   */
  async stop(options: { killTimeoutMs?: number } = {}): Promise<ExitStatus> {
    const reply = await this.request({ type: "stop", ...(options.killTimeoutMs !== undefined ? { killTimeoutMs: options.killTimeoutMs } : {}) });
    return this.noteExit(reply.exit!);
  }

  /** Acknowledges the exit status; the host then exits. Rejects while the agent still runs. */
  async collect(): Promise<ExitStatus> {
    const reply = await this.request({ type: "collect" });
    return this.noteExit(reply.exit!);
  }

  async status(): Promise<HostStatus> {
    const reply = await this.request({ type: "status" });
    return reply.status!;
  }

  /** The agent's screen now, as text. */
  async screenText(): Promise<ScreenText> {
    const reply = await this.request({ type: "screen" });
    return reply.screen!;
  }

  /**
   * The bytes that undo, in this client's terminal, every mode the agent has
   * on (alternate screen, hidden cursor, mouse, keypad, cursor keys, focus
   * events, bracketed paste, kitty keyboard entries, SGR…): write them on
   * detach. Exact for everything this client received before the reply.
   */
  async restoreSequence(): Promise<string> {
    const reply = await this.request({ type: "restore" });
    this.lastRestore = reply.restore ?? "";
    return this.lastRestore;
  }

  /** Closes this connection (the host and agent keep running). */
  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  /** Resolves when the connection is closed. */
  closedPromise(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    return new Promise((resolve) => this.emitter.once("close", () => resolve()));
  }

  // ---- internals ----

  private noteExit(exit: ExitStatus): ExitStatus {
    if (!this.identity.exit) this.identity.exit = exit;
    return exit;
  }

  private send(frame: ClientFrame): void {
    if (this.closedFlag || this.socket.destroyed) return;
    this.socket.write(encodeFrame(frame));
  }

  private request(frame: ClientFrame): Promise<ReplyFrame & { ok: true }> {
    if (this.closedFlag) return Promise.reject(unreachable(this.socketPath, "the connection is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, type: frame.type });
      this.send({ ...frame, id });
    });
  }

  /** @internal */
  handleFrame(line: string): void {
    const frame = parseFrame(line);
    if (!frame) return;
    switch (frame.type) {
      case "output":
        if (typeof frame.data === "string") this.emitter.emit("output", frame.data);
        return;
      case "exit": {
        const status: ExitStatus = { code: (frame.code as number | null) ?? null, signal: (frame.signal as string | null) ?? null, at: frame.at as number };
        this.noteExit(status);
        if (typeof frame.restore === "string") this.lastRestore = frame.restore;
        this.emitter.emit("exit", status, this.lastRestore);
        return;
      }
      case "clients":
        this.attached = attachedFrom(frame);
        this.emitter.emit("clients", this.attached);
        return;
      case "reply": {
        const pending = this.pending.get(frame.id as number);
        if (!pending) return;
        this.pending.delete(frame.id as number);
        const reply = frame as unknown as ReplyFrame;
        if (reply.ok) pending.resolve(reply);
        else pending.reject(new TroupeError(hostErrorCode(reply.error.code), `pty host refused ${pending.type}: ${reply.error.message}`, { hostCode: reply.error.code, socketPath: this.socketPath }));
        return;
      }
      default:
        return;
    }
  }

  /** @internal */
  handleClose(error?: Error): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(unreachable(this.socketPath, `the connection closed before the host answered ${pending.type}`));
    }
    this.emitter.emit("close", error);
  }
}

function attachedFrom(frame: Record<string, unknown>): AttachedClients {
  return { you: frame.you as number, cols: frame.cols as number, rows: frame.rows as number, clients: Array.isArray(frame.clients) ? (frame.clients as ClientInfo[]) : [] };
}

/**
 * Connects to the pty host listening on `socketPath` and performs the
 * handshake (hello → identity, clients, [screen], scrollback). Rejects with
 * HOST_UNREACHABLE when nobody listens there or the host does not answer in time.
 */
export function connectPtyHost(socketPath: string, options: ConnectOptions = {}): Promise<PtyHostClient> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    // The lines of one chunk, gathered so the handshake can hand the rest of them to the client.
    let incoming: string[] = [];
    const framer = new LineFramer({
      maxLineBytes: MAX_HOST_FRAME_BYTES,
      onLine: (line) => incoming.push(line),
      onOverflow: (limit) => socket.destroy(new TroupeError("FRAME_TOO_LARGE", `the pty host at ${socketPath} sent a frame longer than ${limit} bytes; the connection was dropped`, { socketPath, limit })),
    });
    let identity: HostIdentity | null = null;
    let client: PtyHostClient | null = null;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(unreachable(socketPath, `no handshake within ${timeoutMs} ms`)), timeoutMs);

    // Frames after the handshake wait until the caller had a chance to add listeners.
    let backlog: string[] | null = null;
    const deliver = (lines: string[]) => {
      if (!client) return;
      if (backlog) {
        backlog.push(...lines);
        return;
      }
      for (const line of lines) client.handleFrame(line);
    };

    let screen: ScreenSnapshot | null = null;
    let attached: AttachedClients | null = null;
    socket.on("connect", () =>
      socket.write(
        encodeFrame({
          type: "hello",
          id: 0,
          protocol: PROTOCOL_VERSION,
          ...(options.client ? { client: options.client } : {}),
          ...(options.screen ? { screen: true } : {}),
          ...(options.size ? { cols: options.size.cols, rows: options.size.rows } : {}),
          ...(options.readOnly ? { readOnly: true } : {}),
        }),
      ),
    );
    socket.on("data", (chunk: Buffer) => {
      framer.push(chunk);
      const lines = incoming;
      incoming = [];
      if (socket.destroyed) return;
      if (client) return deliver(lines);
      for (let index = 0; index < lines.length; index++) {
        const frame = parseFrame(lines[index]!);
        if (!frame) continue;
        if (frame.type === "identity") {
          const { type: _type, id: _id, ...rest } = frame;
          identity = rest as unknown as HostIdentity;
          if (identity.protocol !== PROTOCOL_VERSION) {
            return fail(
              new TroupeError(
                "HOST_UNREACHABLE",
                `The pty host at ${socketPath} speaks protocol ${String(identity.protocol)}, this troupe speaks ${PROTOCOL_VERSION}; stop that host (pid ${identity.hostPid}) or use the troupe version that started it.`,
                { socketPath, hostPid: identity.hostPid },
              ),
            );
          }
        } else if (frame.type === "clients" && identity) {
          attached = attachedFrom(frame);
        } else if (frame.type === "screen" && identity) {
          const { type: _type, ...rest } = frame;
          screen = rest as unknown as ScreenSnapshot;
        } else if (frame.type === "scrollback" && identity) {
          settled = true;
          clearTimeout(timer);
          client = new PtyHostClient(socket, identity, typeof frame.data === "string" ? frame.data : "", socketPath, { screen, attached });
          backlog = lines.slice(index + 1);
          const ready = client;
          setImmediate(() => {
            const queued = backlog ?? [];
            backlog = null;
            for (const line of queued) ready.handleFrame(line);
          });
          resolve(client);
          return;
        }
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (client) return; // reported through close
      fail(unreachable(socketPath, error.code === "ENOENT" ? "no socket file (the host is not running)" : error.code === "ECONNREFUSED" ? "connection refused (stale socket: the host is gone)" : error.message, error));
    });
    socket.on("close", (hadError) => {
      if (client) {
        const finish = () => client!.handleClose(hadError ? new Error("connection to the pty host broke") : undefined);
        // Let queued frames (say, the final exit) reach listeners before "close".
        if (backlog) setImmediate(finish);
        else finish();
        return;
      }
      fail(unreachable(socketPath, "the host closed the connection during the handshake"));
    });
  });
}

function unreachable(socketPath: string, reason: string, cause?: unknown): TroupeError {
  return new TroupeError("HOST_UNREACHABLE", `Cannot reach the pty host at ${socketPath}: ${reason}.`, { socketPath }, cause ? { cause } : undefined);
}

/**
 * A refused request (the agent already exited or still runs, a bad argument)
 * is INVALID_ARGUMENT; an operation the host tried and could not complete
 * (a signal or resize that failed, an agent that survived SIGKILL) is
 * HOST_UNREACHABLE. The host's own code is kept in `details.hostCode`.
 */
function hostErrorCode(code: string): "INVALID_ARGUMENT" | "HOST_UNREACHABLE" {
  return code === "SIGNAL_FAILED" || code === "RESIZE_FAILED" || code === "STOP_FAILED" ? "HOST_UNREACHABLE" : "INVALID_ARGUMENT";
}
