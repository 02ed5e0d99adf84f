/**
 * A JSON-RPC connection to a daemon (DESIGN §9), typed by the wire contract:
 * `call("spawn", options)` only compiles with the params of DaemonMethods'
 * spawn and resolves to its result. Failures reject with TroupeErrors that
 * carry the daemon's code. Node builtins only.
 */
import { createConnection, type Socket } from "node:net";
import type { SupervisorEvent } from "../shared/contract.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { LineFramer } from "../shared/lines.js";
import { EVENT_NOTIFICATION, PROTOCOL_VERSION, protocolMismatchMessage, type DaemonMethod, type HelloResult, type ParamsOf, type ResultOf, type RpcError } from "../daemon/protocol.js";

/** Replies may be larger than requests (a long status, a big inbox). */
const MAX_REPLY_BYTES = 256 * 1024 * 1024;

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** The params argument: optional for the methods that take none. */
type ParamsArg<M extends DaemonMethod> = Record<string, never> extends ParamsOf<M> ? [params?: ParamsOf<M>] : [params: ParamsOf<M>];

export class DaemonClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly lines = new LineFramer({
    maxLineBytes: MAX_REPLY_BYTES,
    onLine: (line) => this.onLine(line),
    onOverflow: () => {
      this.fail(new TroupeError("PROTOCOL_ERROR", "the daemon sent an oversized frame"));
      this.socket.destroy();
    },
  });
  private closedError: Error | null = null;
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();
  private readonly closeListeners = new Set<() => void>();
  hello: HelloResult | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.on("data", (chunk: Buffer) => this.lines.push(chunk));
    socket.on("error", (error) => this.fail(new TroupeError("DAEMON_UNREACHABLE", `lost the daemon connection: ${error.message}`)));
    socket.on("close", () => {
      this.fail(new TroupeError("DAEMON_UNREACHABLE", "the daemon closed the connection"));
      for (const fn of this.closeListeners) fn();
    });
  }

  /** Connects (the socket's own errors reject, with their errno code, for the caller to judge). */
  static connect(socketPath: string): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(socketPath);
      const onError = (error: NodeJS.ErrnoException) => reject(error);
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        resolve(new DaemonClient(socket, socketPath));
      });
    });
  }

  /** The protocol handshake, which must come first; a daemon that does not answer in time is reported as wedged. */
  async handshake(timeoutMs = Number(process.env.TROUPE_HELLO_TIMEOUT_MS ?? 15_000)): Promise<HelloResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TroupeError("DAEMON_UNREACHABLE", `the daemon at ${this.socketPath} did not answer within ${timeoutMs} ms; see .troupe/logs/daemon.log (a wedged daemon can be killed: its pid is in .troupe/state/lock)`)), timeoutMs);
    });
    try {
      this.hello = await Promise.race([this.call("hello", { protocol: PROTOCOL_VERSION, client: `troupe-cli/${process.version}` }), timeout]);
    } catch (error) {
      // The daemon words the mismatch from its side; say it from ours.
      if (isTroupeError(error, "PROTOCOL_MISMATCH") && typeof error.details.daemon === "number") {
        throw new TroupeError("PROTOCOL_MISMATCH", protocolMismatchMessage(error.details.daemon, PROTOCOL_VERSION), error.details);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return this.hello;
  }

  call<M extends DaemonMethod>(method: M, ...[params]: ParamsArg<M>): Promise<ResultOf<M>> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params: params ?? {} })}\n`);
    });
  }

  /** Events of a `subscribe` made on this connection. */
  onEvent(listener: (event: SupervisorEvent) => void): void {
    this.listeners.add(listener);
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onLine(line: string): void {
    let message: { id?: unknown; result?: unknown; error?: Partial<RpcError>; method?: string; params?: { event?: SupervisorEvent } };
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (message.method === EVENT_NOTIFICATION) {
      const event = message.params?.event;
      if (event) for (const listener of this.listeners) listener(event);
      return;
    }
    if (typeof message.id !== "number") {
      // an error about a frame we sent that had no usable id: fail everything pending
      if (message.error) this.fail(errorOf(message.error));
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (message.error) pending.reject(errorOf(message.error));
    else pending.resolve(message.result);
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

/** An error reply as a TroupeError: `data` carries the daemon's code; a peer that sent none gets PROTOCOL_ERROR. */
function errorOf(error: Partial<RpcError>): TroupeError {
  const data = error.data;
  if (data && typeof data.code === "string") return TroupeError.fromJSON({ code: data.code, message: data.message ?? String(error.message), details: data.details ?? {} });
  return new TroupeError("PROTOCOL_ERROR", String(error.message ?? "the daemon sent an error without data"), { rpcCode: error.code });
}
