/**
 * The daemon's IPC server: JSON-RPC 2.0, newline-delimited, over a Unix
 * socket (DESIGN §9). Every frame is checked before anything runs: a bad one
 * gets an error reply (an oversized one also closes its connection) and the
 * daemon goes on serving everyone else.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { isTroupeError } from "../shared/errors.js";
import { MAX_FRAME_BYTES, RpcCode, protocolMismatchMessage, PROTOCOL_VERSION, type RpcErrorData, type RpcId } from "./protocol.js";

/** An error a handler throws to reply with a specific JSON-RPC code. */
export class RpcFailure extends Error {
  constructor(
    readonly rpcCode: number,
    readonly data: RpcErrorData,
  ) {
    super(data.message);
  }
}

export function invalidParams(message: string, details: Record<string, unknown> = {}): RpcFailure {
  return new RpcFailure(RpcCode.INVALID_PARAMS, { code: "INVALID_ARGUMENT", message, details });
}

export interface MethodSpec {
  /** Checks and normalises the params (only the known fields survive); throws RpcFailure. */
  params: (raw: Record<string, unknown>) => Record<string, unknown>;
  run: (params: Record<string, unknown>, connection: Connection) => unknown;
}

/** Largest reply backlog a slow subscriber may accumulate before it is dropped. */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;

export class Connection {
  helloed = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closing = false;
  private readonly cleanups: Array<() => void> = [];

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly server: RpcServer,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
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

  fail(id: RpcId | undefined, rpcCode: number, data: RpcErrorData): void {
    if (id === undefined && rpcCode !== RpcCode.PARSE_ERROR && rpcCode !== RpcCode.INVALID_REQUEST) return;
    this.send({ jsonrpc: "2.0", id: id ?? null, error: { code: rpcCode, message: data.message, data } });
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) break;
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.buffered + piece.length > MAX_FRAME_BYTES) return this.oversize();
      const line = this.chunks.length === 0 ? piece : Buffer.concat([...this.chunks, piece]);
      this.chunks = [];
      this.buffered = 0;
      this.handleLine(line);
      if (this.closing) return;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.buffered += rest.length;
      if (this.buffered > MAX_FRAME_BYTES) return this.oversize();
      this.chunks.push(rest);
    }
  }

  private oversize(): void {
    this.closing = true;
    this.chunks = [];
    this.buffered = 0;
    this.server.logger.warn({ connection: this.id }, "frame larger than the limit: closing the connection");
    this.fail(null, RpcCode.INVALID_REQUEST, { code: "FRAME_TOO_LARGE", message: `frame larger than ${MAX_FRAME_BYTES} bytes: connection closed`, details: { limit: MAX_FRAME_BYTES } });
    // Half-close and drop whatever the peer still sends; a peer that never closes its side is cut off.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private handleLine(line: Buffer): void {
    const text = line.toString("utf8").trim();
    if (text === "") return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return this.fail(null, RpcCode.PARSE_ERROR, { code: "PARSE_ERROR", message: "frame is not valid JSON", details: {} });
    }
    if (Array.isArray(message)) return this.fail(null, RpcCode.INVALID_REQUEST, { code: "INVALID_REQUEST", message: "batch requests are not supported: send one request per line", details: {} });
    if (typeof message !== "object" || message === null) return this.fail(null, RpcCode.INVALID_REQUEST, { code: "INVALID_REQUEST", message: "a request must be a JSON object", details: {} });
    const request = message as Record<string, unknown>;
    const rawId = request.id;
    const idOk = rawId === undefined || rawId === null || typeof rawId === "string" || (typeof rawId === "number" && Number.isFinite(rawId));
    const id = idOk ? (rawId as RpcId | undefined) : null;
    if (!idOk || (typeof rawId === "string" && rawId.length > 128)) return this.fail(null, RpcCode.INVALID_REQUEST, { code: "INVALID_REQUEST", message: "id must be a string (at most 128 characters), a number or null", details: {} });
    if (request.jsonrpc !== "2.0") return this.fail(id ?? null, RpcCode.INVALID_REQUEST, { code: "INVALID_REQUEST", message: 'jsonrpc must be "2.0"', details: {} });
    if (typeof request.method !== "string" || request.method.length === 0 || request.method.length > 64) {
      return this.fail(id ?? null, RpcCode.INVALID_REQUEST, { code: "INVALID_REQUEST", message: "method must be a non-empty string", details: {} });
    }
    const method = request.method;
    const params = request.params ?? {};
    if (typeof params !== "object" || params === null || Array.isArray(params)) {
      return this.fail(id, RpcCode.INVALID_PARAMS, { code: "INVALID_ARGUMENT", message: "params must be an object", details: { method } });
    }
    const spec = this.server.methods.get(method);
    if (!spec) return this.fail(id, RpcCode.METHOD_NOT_FOUND, { code: "METHOD_NOT_FOUND", message: `unknown method ${JSON.stringify(method)}`, details: { method } });
    if (method !== "hello" && !this.helloed) {
      return this.fail(id, RpcCode.PROTOCOL_MISMATCH, { code: "PROTOCOL_MISMATCH", message: "call hello { protocol } first", details: { protocol: PROTOCOL_VERSION } });
    }
    if (this.server.shuttingDown && method !== "hello" && method !== "daemon.status") {
      return this.fail(id, RpcCode.SHUTTING_DOWN, { code: "SHUTTING_DOWN", message: "the daemon is shutting down; retry in a moment", details: {} });
    }
    let checked: Record<string, unknown>;
    try {
      checked = spec.params(params as Record<string, unknown>);
    } catch (error) {
      return this.failWith(id, method, error);
    }
    let result: unknown;
    try {
      result = spec.run(checked, this);
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

  private failWith(id: RpcId | undefined, method: string, error: unknown): void {
    if (error instanceof RpcFailure) return this.fail(id, error.rpcCode, error.data);
    if (isTroupeError(error)) return this.fail(id, RpcCode.APPLICATION_ERROR, error.toJSON());
    this.server.logger.error({ err: error, method, connection: this.id }, "request failed unexpectedly");
    const message = error instanceof Error ? error.message : String(error);
    this.fail(id, RpcCode.INTERNAL_ERROR, { code: "INTERNAL", message: `internal error in ${method}: ${message}`, details: {} });
  }

  private dispose(): void {
    this.closing = true;
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
  private server: Server | null = null;
  private readonly connections = new Set<Connection>();
  private nextId = 1;

  constructor(
    readonly socketPath: string,
    readonly methods: Map<string, MethodSpec>,
    readonly logger: Logger,
  ) {}

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

export { protocolMismatchMessage };
