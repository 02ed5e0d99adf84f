/**
 * Typing mail into builders' terminals (DESIGN §8). For a live builder whose
 * profile delivers by PTY, once its terminal has been quiet for `idleMs`, the
 * oldest most urgent undelivered message is typed as a bracketed paste plus
 * Enter — one message at a time. `deliveredAt` is made durable BEFORE the
 * write, so a crash can never type the same message twice (at most once; the
 * message stays in the inbox either way).
 */
import { fault } from "../shared/faults.js";
import type { Priority } from "../shared/vocabulary.js";
import type { MailRow, Store } from "../storage/types.js";
import { isLive } from "./address.js";
import { noopLogger, type Directory, type LoggerLike, type PtyDeliveryOptions, type TerminalPort } from "./types.js";

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";
const RANK: Record<Priority, number> = { urgent: 0, high: 1, normal: 2, low: 3 };
/** setTimeout's ceiling. */
const MAX_DELAY = 2_147_483_647;

/** Strips what a terminal would interpret (escape sequences, C0/C1 controls but \n and \t) so mail cannot end the paste early or inject keystrokes. */
export function sanitizeForTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "");
}

/** The text typed into a terminal for one message: bracketed paste of one header line and the body, then Enter. */
export function formatForTerminal(message: MailRow): string {
  const kind = message.priority === "normal" ? message.type : `${message.type}, ${message.priority}`;
  const subject = message.subject ? `${sanitizeForTerminal(message.subject).replace(/\n/g, " ")}: ` : "";
  const header = `[troupe mail from ${sanitizeForTerminal(message.from)} (${sanitizeForTerminal(kind)}) #${sanitizeForTerminal(message.id)}]`;
  return `${PASTE_START}${header} ${subject}${sanitizeForTerminal(message.body)}${PASTE_END}\r`;
}

/** Oldest first within a priority, urgent → high → normal → low. */
export function deliveryOrder(messages: MailRow[]): MailRow[] {
  return messages
    .map((m, index) => ({ m, index }))
    .sort((a, b) => RANK[a.m.priority] - RANK[b.m.priority] || a.m.createdAt - b.m.createdAt || a.index - b.index)
    .map((x) => x.m);
}

export class PtyDelivery {
  private readonly store: Store;
  private readonly directory: Directory;
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly logger: LoggerLike;
  private readonly terminal: TerminalPort;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Builders with a delivery in flight (one message at a time each). */
  private readonly busy = new Map<string, Promise<void>>();
  /** When we last typed into each terminal: typing counts as activity, so messages are spaced by idleMs. */
  private readonly typedAt = new Map<string, number>();
  private running = false;

  constructor(options: PtyDeliveryOptions) {
    if (!Number.isFinite(options.idleMs) || options.idleMs < 0) throw new RangeError("idleMs must be a finite number ≥ 0");
    this.store = options.store;
    this.directory = options.directory;
    this.idleMs = options.idleMs;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? noopLogger;
    this.terminal = options.terminal;
  }

  /** Scans the store for undelivered mail (e.g. after a restart) and schedules its delivery. */
  start(): void {
    this.running = true;
    this.notify();
  }

  /** Cancels every timer; resolves once deliveries in flight have finished. */
  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.busy.values()]);
  }

  /**
   * Something changed: new mail for `actorId`, its terminal came up, or it went
   * quiet. Without an id, every live PTY builder is checked.
   */
  notify(actorId?: string): void {
    if (!this.running) return;
    if (actorId !== undefined) {
      this.check(actorId);
      return;
    }
    for (const actor of this.directory.live()) if (actor.deliver === "pty") this.check(actor.id);
  }

  private check(actorId: string): void {
    if (!this.running) return;
    const timer = this.timers.get(actorId);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(actorId);
    }
    // One message at a time: the delivery in flight re-checks when it finishes.
    if (this.busy.has(actorId)) return;
    const info = this.directory.byId(actorId);
    if (!info || !isLive(info) || info.deliver !== "pty") {
      this.typedAt.delete(actorId);
      return;
    }
    const pending = this.store.listMail({ toId: actorId, undelivered: true }).filter((m) => m.toId === actorId && m.deliveredAt === null);
    if (pending.length === 0) return;
    const lastOutput = this.terminal.lastOutputAt(actorId);
    // No live terminal: the supervisor notifies us when one comes up.
    if (lastOutput === null) return;
    const lastActivity = Math.max(lastOutput, this.typedAt.get(actorId) ?? -Infinity);
    const quietFor = this.now() - lastActivity;
    if (quietFor < this.idleMs) {
      const delay = Math.min(MAX_DELAY, Math.max(1, Math.ceil(this.idleMs - quietFor)));
      const t = setTimeout(() => {
        this.timers.delete(actorId);
        this.check(actorId);
      }, delay);
      t.unref();
      this.timers.set(actorId, t);
      return;
    }
    const next = deliveryOrder(pending)[0]!;
    const done = this.deliver(actorId, next).finally(() => {
      this.busy.delete(actorId);
      // More mail may be waiting; it goes after the terminal has been quiet again.
      if (this.running) this.check(actorId);
    });
    this.busy.set(actorId, done);
  }

  private async deliver(actorId: string, message: MailRow): Promise<void> {
    const deliveredAt = this.now();
    try {
      await this.store.write((tx) => tx.updateMail(message.id, { deliveredAt }));
    } catch (error) {
      this.logger.error({ err: error, actorId, messageId: message.id }, "could not record mail delivery; not typing it");
      // Not typed. Retry no sooner than idleMs from now, so a failing store is not hammered.
      this.typedAt.set(actorId, this.now());
      return;
    }
    this.typedAt.set(actorId, this.now());
    try {
      fault("mail.after-delivered");
      await this.terminal.write(actorId, formatForTerminal(message));
      this.logger.debug({ actorId, messageId: message.id, type: message.type }, "mail typed into terminal");
    } catch (error) {
      // At most once: it is marked delivered and stays in the inbox.
      this.logger.warn({ err: error, actorId, messageId: message.id }, "typing mail into the terminal failed; it stays in the inbox");
    }
  }
}
