/**
 * The daemon's IPC server: JSON-RPC 2.0, newline-delimited, over a Unix
 * socket (DESIGN §9). Every frame is checked before anything runs: a bad one
 * gets an error reply (an oversized one also closes its connection) and the
 * daemon goes on serving everyone else.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { TroupeError, isTroupeError, type TroupeErrorCode } from "../shared/errors.js";
import { LineFramer } from "../shared/lines.js";
import { MAX_FRAME_BYTES, PROTOCOL_VERSION, RpcCode, type DaemonMethod, type DaemonMethods, type RpcId } from "./protocol.js";

/** One method of the daemon: how its params are checked (only known fields survive), then what it does. */
export interface Method<M extends DaemonMethod> {
  /** Throws a TroupeError for params it refuses: always an INVALID_PARAMS reply, with the error's own code in `data`. */
  params(raw: Record<string, unknown>): DaemonMethods[M]["params"];
  run(params: DaemonMethods[M]["params"], connection: Connection): DaemonMethods[M]["result"] | Promise<DaemonMethods[M]["result"]>;
}

/** The daemon's methods, one per entry of DaemonMethods: a missing or mistyped one does not compile. */
export type MethodTable = { [M in DaemonMethod]: Method<M> };

/**
 * The JSON-RPC code of an error reply, by the TroupeError's code (the one
 * table). Anything not listed is an application error (-32000), whose `data`
 * carries the code. Params a method refuses are INVALID_PARAMS whatever their
 * code (INVALID_ARGUMENT, INVALID_NAME): see `Method.params`.
 */
const RPC_CODES: Partial<Record<TroupeErrorCode, number>> = {
  PARSE_ERROR: RpcCode.PARSE_ERROR,
  INVALID_REQUEST: RpcCode.INVALID_REQUEST,
  FRAME_TOO_LARGE: RpcCode.INVALID_REQUEST,
  METHOD_NOT_FOUND: RpcCode.METHOD_NOT_FOUND,
  INVALID_PARAMS: RpcCode.INVALID_PARAMS,
  INTERNAL: RpcCode.INTERNAL_ERROR,
  PROTOCOL_MISMATCH: RpcCode.PROTOCOL_MISMATCH,
  SHUTTING_DOWN: RpcCode.SHUTTING_DOWN,
};

function rpcCodeOf(error: TroupeError): number {
  return RPC_CODES[error.code] ?? RpcCode.APPLICATION_ERROR;
}

/** A method bound to its table entry: checking the params returns the call to run (two phases, two error mappings). */
type Handler = (raw: Record<string, unknown>, connection: Connection) => () => unknown;

function bind<M extends DaemonMethod>(method: Method<M>): Handler {
  return (raw, connection) => {
    const params = method.params(raw);
    return () => method.run(params, connection);
  };
}

/** Largest reply backlog a slow subscriber may accumulate before it is dropped. */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

export class Connection {
  helloed = false;
  private readonly lines = new LineFramer({ maxLineBytes: MAX_FRAME_BYTES, onLine: (line) => this.handleLine(line), onOverflow: () => this.oversize() });
  private readonly cleanups: Array<() => void> = [];

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly server: RpcServer,
  ) {
    socket.on("data", (chunk: Buffer) => this.lines.push(chunk));
    socket.on("error", () => undefined); // a peer that vanished: "close" follows
    socket.on("close", () => this.dispose());
  }

  /** Runs `fn` when the connection closes (subscriptions hang here). */
  onClose(fn: () => void): void {
    if (this.socket.destroyed) fn();
    else this.cleanups.push(fn);
  }

  send(message: object): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    if (this.socket.writableLength > MAX_BACKLOG_BYTES) {
      this.server.logger.warn({ connection: this.id, backlog: this.socket.writableLength }, "client is not reading: dropping it");
      this.socket.destroy();
      return false;
    }
    this.socket.write(`${JSON.stringify(message)}\n`);
    return true;
  }

  reply(id: RpcId | undefined, result: unknown): void {
    if (id === undefined) return; // a notification: no reply
    this.send({ jsonrpc: "2.0", id, result: result ?? null });
  }

  /** Replies with `error` (requests without an id get no reply, but frames too broken to have one do). */
  fail(id: RpcId | undefined, error: TroupeError, rpcCode = rpcCodeOf(error)): void {
    if (id === undefined && rpcCode !== RpcCode.PARSE_ERROR && rpcCode !== RpcCode.INVALID_REQUEST) return;
    this.send({ jsonrpc: "2.0", id: id ?? null, error: { code: rpcCode, message: error.message, data: error.toJSON() } });
  }

  /** The framer has stopped: what follows an oversized line cannot be framed. */
  private oversize(): void {
    this.server.logger.warn({ connection: this.id }, "frame larger than the limit: closing the connection");
    this.fail(null, new TroupeError("FRAME_TOO_LARGE", `frame larger than ${MAX_FRAME_BYTES} bytes: connection closed`, { limit: MAX_FRAME_BYTES }));
    // Half-close and drop whatever the peer still sends; a peer that never closes its side is cut off.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private handleLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return this.fail(null, new TroupeError("PARSE_ERROR", "frame is not valid JSON"));
    }
    const invalid = (id: RpcId, why: string) => this.fail(id, new TroupeError("INVALID_REQUEST", why));
    if (Array.isArray(message)) return invalid(null, "batch requests are not supported: send one request per line");
    if (typeof message !== "object" || message === null) return invalid(null, "a request must be a JSON object");
    const request = message as Record<string, unknown>;
    const rawId = request.id;
    const idOk = rawId === undefined || rawId === null || typeof rawId === "string" || (typeof rawId === "number" && Number.isFinite(rawId));
    if (!idOk || (typeof rawId === "string" && rawId.length > 128)) return invalid(null, "id must be a string (at most 128 characters), a number or null");
    const id = rawId as RpcId | undefined;
    if (request.jsonrpc !== "2.0") return invalid(id ?? null, 'jsonrpc must be "2.0"');
    if (typeof request.method !== "string" || request.method.length === 0 || request.method.length > 64) return invalid(id ?? null, "method must be a non-empty string");
    const method = request.method;
    const params = request.params ?? {};
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      return this.fail(id, new TroupeError("INVALID_ARGUMENT", "params must be an object", { method }), RpcCode.INVALID_PARAMS);
    }
    const handler = this.server.handlers.get(method);
    if (!handler) return this.fail(id, new TroupeError("METHOD_NOT_FOUND", `unknown method ${JSON.stringify(method)}`, { method }));
    if (method !== "hello" && !this.helloed) return this.fail(id, new TroupeError("PROTOCOL_MISMATCH", "call hello { protocol } first", { protocol: PROTOCOL_VERSION }));
    if (this.server.shuttingDown && method !== "hello" && method !== "daemon.status") {
      return this.fail(id, new TroupeError("SHUTTING_DOWN", "the daemon is shutting down; retry in a moment"));
    }
    let run: () => unknown;
    try {
      run = handler(params as Record<string, unknown>, this);
    } catch (error) {
      return this.failWith(id, method, error, RpcCode.INVALID_PARAMS);
    }
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      return this.failWith(id, method, error);
    }
    if (result instanceof Promise) {
      result.then(
        (value) => this.reply(id, value),
        (error) => this.failWith(id, method, error),
      );
    } else {
      this.reply(id, result);
    }
  }

  private failWith(id: RpcId | undefined, method: string, error: unknown, rpcCode?: number): void {
    if (isTroupeError(error)) return this.fail(id, error, rpcCode);
    this.server.logger.error({ err: error, method, connection: this.id }, "request failed unexpectedly");
    const message = error instanceof Error ? error.message : String(error);
    this.fail(id, new TroupeError("INTERNAL", `internal error in ${method}: ${message}`));
  }

  private dispose(): void {
    this.lines.stop();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (error) {
        this.server.logger.error({ err: error }, "connection cleanup failed");
      }
    }
    this.server.forget(this);
  }
}

export class RpcServer {
  shuttingDown = false;
  readonly handlers: ReadonlyMap<string, Handler>;
  private server: Server | null = null;
  private readonly connections = new Set<Connection>();
  private nextId = 1;

  constructor(
    readonly socketPath: string,
    methods: MethodTable,
    readonly logger: Logger,
  ) {
    // A Map, so that a method name from the wire never reaches an object's prototype ("__proto__", "constructor").
    this.handlers = new Map(Object.entries(methods).map(([name, method]) => [name, bind(method)]));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Listens on the socket (owner-only). The caller holds the workspace lock,
   * so a socket file already there is a dead daemon's: it is replaced.
   */
  listen(): Promise<void> {
    removeStaleSocket(this.socketPath);
    const server = createServer((socket) => {
      const connection = new Connection(this.nextId++, socket, this);
      this.connections.add(connection);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      const previous = process.umask(0o077);
      try {
        server.listen(this.socketPath, () => {
          server.off("error", reject);
          server.on("error", (error) => this.logger.error({ err: error }, "socket server error"));
          chmodSync(this.socketPath, 0o600);
          resolve();
        });
      } finally {
        process.umask(previous);
      }
    });
  }

  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  /** Stops accepting, ends every connection and removes the socket file. */
  async close(): Promise<void> {
    this.shuttingDown = true;
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.connections) connection.socket.end();
    const deadline = setTimeout(() => {
      for (const connection of this.connections) connection.socket.destroy();
    }, 1000);
    await closed;
    clearTimeout(deadline);
    removeStaleSocket(this.socketPath);
  }
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // not there
  }
}
