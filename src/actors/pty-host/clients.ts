/**
 * The clients of one pty host as a group (DESIGN §5): what each says in its
 * hello (name, size, read-only, screen or bytes), the pty size they share —
 * the smallest any of them reported, as tmux does, so no client shows rows
 * the agent cannot see — and the `clients` frame that tells each who else is
 * attached, whenever that changes.
 */
import type { Conn, HostServer } from "./host-server.js";
import { isDimension } from "./host-io.js";
import type { ClientInfo, HostIdentity } from "./protocol.js";
import type { ScrollbackRing } from "./ring.js";
import type { Screen } from "./screen.js";

export interface Size {
  cols: number;
  rows: number;
}

export interface AttachmentsHost {
  size(): Size;
  /** Resizes the agent's terminal and the screen; throws when the pty refuses. */
  resize(size: Size): void;
  /** Whether the agent still runs (a resize then reaches it). */
  agentRuns(): boolean;
}

export class Attachments {
  constructor(
    private readonly server: HostServer,
    private readonly screen: Screen,
    private readonly ring: ScrollbackRing,
    private readonly host: AttachmentsHost,
  ) {}

  /** identity, clients, then the screen (if asked for) or the byte scrollback. */
  hello(conn: Conn, frame: { id?: unknown; [key: string]: unknown }, identity: HostIdentity): void {
    conn.name = typeof frame.client === "string" ? frame.client : null;
    conn.readOnly = frame.readOnly === true;
    if (isDimension(frame.cols) && isDimension(frame.rows)) conn.size = { cols: frame.cols, rows: frame.rows };
    // Before the screen is serialized, so it comes at the size this client will share.
    if (conn.size && this.host.agentRuns()) this.fit();
    conn.subscribed = true;
    this.server.send(conn, { type: "identity", ...(frame.id !== undefined ? { id: frame.id as number } : {}), ...identity });
    this.notify();
    if (frame.screen === true) {
      const { snapshot, view } = this.screen.snapshot();
      conn.kitty = view;
      this.server.send(conn, { type: "screen", ...snapshot });
      this.server.send(conn, { type: "scrollback", data: "" });
    } else {
      conn.kitty = this.screen.modes.blankView();
      this.server.send(conn, { type: "scrollback", data: this.ring.toString() });
    }
  }

  /** A client reported a new size; throws when the pty refuses it. */
  resized(conn: Conn, size: Size): void {
    conn.size = size;
    this.fitOrThrow();
    // Its own entry in the list changed even when the shared size did not.
    this.notify();
  }

  gone(conn: Conn): void {
    if (conn.kitty) this.screen.modes.detachView(conn.kitty);
    if (!conn.subscribed) return;
    if (conn.size && this.host.agentRuns()) this.fit();
    this.notify();
  }

  /** The smallest reported size, dimension by dimension; null when no client reported one. */
  smallest(): Size | null {
    let size: Size | null = null;
    for (const conn of this.server.conns) {
      if (!conn.size) continue;
      size = size ? { cols: Math.min(size.cols, conn.size.cols), rows: Math.min(size.rows, conn.size.rows) } : { ...conn.size };
    }
    return size;
  }

  infos(): ClientInfo[] {
    return [...this.server.conns]
      .filter((conn) => conn.subscribed)
      .map((conn) => ({ id: conn.id, client: conn.name, cols: conn.size?.cols ?? null, rows: conn.size?.rows ?? null, readOnly: conn.readOnly }));
  }

  /** Sends the `clients` frame to every subscribed client. */
  notify(): void {
    const clients = this.infos();
    const { cols, rows } = this.host.size();
    for (const conn of this.server.conns) {
      if (conn.subscribed) this.server.send(conn, { type: "clients", you: conn.id, cols, rows, clients });
    }
  }

  /** With no sized client left, the pty keeps its size. True when it changed. */
  private fitOrThrow(): boolean {
    const size = this.smallest();
    const current = this.host.size();
    if (!size || (size.cols === current.cols && size.rows === current.rows)) return false;
    this.host.resize(size);
    return true;
  }

  private fit(): void {
    try {
      this.fitOrThrow();
    } catch {
      // The agent's pty is going away (it exited between the check and the resize): nothing to fit.
    }
  }
}
