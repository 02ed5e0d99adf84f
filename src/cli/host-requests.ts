/**
 * Requests from `troupe attach` to its pty host that want an answer (the
 * screen's cursor, the restore bytes): each carries an id, and the host's
 * `reply` with that id settles it. Node builtins only (the CLI loads it).
 */
import type { ClientFrame } from "../actors/pty-host/protocol.js";
import { TroupeError } from "../shared/errors.js";

type Reply = { [key: string]: unknown };

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  type: string;
}

export class HostRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly send: (frame: ClientFrame) => void) {}

  /** Sends `frame` with a fresh id; resolves with the ok reply, rejects on a refusal, after `timeoutMs`, or on closeAll(). */
  request(frame: ClientFrame, timeoutMs: number): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TroupeError("HOST_UNREACHABLE", `the pty host did not answer ${frame.type} within ${timeoutMs} ms; attach again, or check \`troupe status\``));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, type: frame.type });
      this.send({ ...frame, id });
    });
  }

  /** Settles the request a reply answers; false when it answers none of these (it is someone else's to handle). */
  settle(frame: { id?: unknown; ok?: unknown; error?: unknown; [key: string]: unknown }): boolean {
    const id = typeof frame.id === "number" ? frame.id : -1;
    const pending = this.pending.get(id);
    if (!pending) return false;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (frame.ok === true) pending.resolve(frame);
    else {
      const error = frame.error as { code?: string; message?: string } | undefined;
      pending.reject(new TroupeError("INVALID_ARGUMENT", `the pty host refused ${pending.type}: ${error?.message ?? "no reason given"}`, { hostCode: error?.code }));
    }
    return true;
  }

  /** The connection is gone: every waiting request fails now, and no timer outlives it. */
  closeAll(): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new TroupeError("HOST_UNREACHABLE", `the connection to the pty host closed before it answered ${pending.type}`));
    }
  }
}
