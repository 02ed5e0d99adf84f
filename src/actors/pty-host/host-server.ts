/**
 * The pty host's socket: it listens owner-only at the builder's socket path,
 * frames each client's lines, and writes frames back, dropping a client that
 * sends an oversized line or does not read what it is sent. What a frame means
 * is the host's business (`onFrame`). Node builtins only.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { LineFramer } from "../../shared/lines.js";
import { hostFailure } from "./failure.js";
import { assertSocketFree, errorText } from "./host-io.js";
import { hostLog } from "./host-log.js";
import type { KittyView } from "./modes.js";
import { MAX_FRAME_BYTES, encodeFrame, type HostFrame } from "./protocol.js";

/** A client whose unsent output exceeds this is too slow: it is dropped, not buffered without bound. */
const MAX_CLIENT_BACKLOG = 8 * 1024 * 1024;

export interface Conn {
  /** Unique within this host's life (ClientInfo.id). */
  id: number;
  socket: Socket;
  /** Said hello: receives output and the exit broadcast. */
  subscribed: boolean;
  /** The `client` name of its hello. */
  name: string | null;
  /** Its terminal's size, once reported (hello or resize). */
  size: { cols: number; rows: number } | null;
  readOnly: boolean;
  /** The kitty keyboard entries its terminal holds, counted since its hello. */
  kitty: KittyView | null;
}

export class HostServer {
  readonly conns = new Set<Conn>();
  private server: Server | null = null;
  private socketIno: number | null = null;
  private nextConnId = 1;

  constructor(
    private readonly path: string,
    private readonly onFrame: (conn: Conn, line: string) => void,
    private readonly onClose: (conn: Conn) => void = () => undefined,
  ) {}

  async listen(): Promise<void> {
    const path = this.path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    await assertSocketFree(path);
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(hostFailure("SPAWN_FAILED", `Could not listen on ${path}: ${errorText(error)}`, { socketPath: path })));
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

  /** Stops listening and removes the socket file, if it is still ours. */
  close(): void {
    this.server?.close();
    this.server = null;
    if (this.socketIno === null) return;
    try {
      // Only our own socket file: never one a later host made at the same path.
      if (lstatSync(this.path).ino === this.socketIno) unlinkSync(this.path);
    } catch {
      // already gone
    }
    this.socketIno = null;
  }

  /** Ends every connection; resolves once each has closed. */
  endAll(): Promise<void> {
    const closed = [...this.conns].map(
      ({ socket }) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve();
          socket.once("close", () => resolve());
          socket.end();
        }),
    );
    return Promise.all(closed).then(() => undefined);
  }

  destroyAll(): void {
    for (const conn of this.conns) conn.socket.destroy();
  }

  send(conn: Conn, frame: HostFrame): void {
    const socket = conn.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > MAX_CLIENT_BACKLOG) {
      hostLog("warn", "dropping a client that does not read its output");
      socket.destroy();
      return;
    }
    socket.write(encodeFrame(frame));
  }

  /** Sends `frame` to every client that said hello. */
  broadcast(frame: HostFrame): void {
    for (const conn of this.conns) if (conn.subscribed) this.send(conn, frame);
  }

  reply(conn: Conn, id: unknown, result: Record<string, unknown> = {}): void {
    if (id === undefined || id === null) return;
    this.send(conn, { type: "reply", id: id as number, ok: true, ...result });
  }

  fail(conn: Conn, id: unknown, code: string, message: string): void {
    if (id === undefined || id === null) {
      hostLog("warn", "request refused", { code, message });
      return;
    }
    this.send(conn, { type: "reply", id: id as number, ok: false, error: { code, message } });
  }

  private onConnection(socket: Socket): void {
    const conn: Conn = { id: this.nextConnId++, socket, subscribed: false, name: null, size: null, readOnly: false, kitty: null };
    const framer: LineFramer = new LineFramer({
      maxLineBytes: MAX_FRAME_BYTES,
      onLine: (line) => {
        if (socket.destroyed) return framer.stop();
        try {
          this.onFrame(conn, line);
        } catch (error) {
          hostLog("error", "frame handling failed", { err: errorText(error) });
        }
      },
      onOverflow: (limit) => {
        hostLog("warn", "dropping client: bad framing", { err: `frame longer than ${limit} bytes` });
        socket.destroy();
      },
    });
    this.conns.add(conn);
    socket.on("data", (chunk: Buffer) => framer.push(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.conns.delete(conn);
      this.onClose(conn);
    });
  }
}
