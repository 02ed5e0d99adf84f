import type { Logger } from "pino";
import { Mailbox, PtyDelivery, TokenAuthority, noticeMessage, protocolEffects, type ActorInfo, type Directory, type NoticeInfo, type ReplyRequest, type SendRequest, type Sender } from "../mailbox/index.js";
import type { ActorRow, MailRow, Store } from "../storage/types.js";
import type { BuilderRuntime } from "./builder/index.js";
import type { AgentProfile } from "./profiles.js";
import { fault } from "../shared/faults.js";

/** What the mail wiring needs to see of the supervisor. */
export interface MailHost {
  store: Store;
  logger: Logger;
  idleMs: number;
  runtimeById(id: string): BuilderRuntime | undefined;
  profileOf(row: ActorRow): AgentProfile;
  /** Applies `worker_done` from builder `id` (completes it and stops its agent). */
  workerDone(id: string): void;
  onMail(message: MailRow): void;
}

/**
 * Mail as actor messages (DESIGN §8): the mailbox routes and stores, the
 * delivery types into terminals, and this class connects both to the
 * supervisor's builders and to agents' tokens.
 */
export class SupervisorMail {
  readonly mailbox: Mailbox;
  private readonly delivery: PtyDelivery;
  private readonly directory: Directory;

  constructor(private readonly host: MailHost, private readonly tokens: TokenAuthority) {
    this.directory = {
      byName: (name) => this.info(host.store.findActorByName(name, { includeDestroyed: true })),
      byId: (id) => this.info(host.store.getActor(id)),
      live: () => host.store.listActors().filter((row) => row.state !== "destroying").map((row) => this.info(row)!),
    };
    this.mailbox = new Mailbox({ store: host.store, directory: this.directory, logger: host.logger, onStored: (rows) => this.stored(rows) });
    this.delivery = new PtyDelivery({
      store: host.store,
      directory: this.directory,
      idleMs: host.idleMs,
      logger: host.logger,
      terminal: {
        lastOutputAt: (id) => host.runtimeById(id)?.terminalLastOutputAt() ?? null,
        write: async (id, data) => {
          const runtime = host.runtimeById(id);
          if (!runtime) throw new Error(`builder ${id} has no live terminal`);
          runtime.writeTerminal(data);
        },
      },
    });
  }

  start(): void {
    this.delivery.start();
  }

  async stop(): Promise<void> {
    await this.delivery.stop();
  }

  tokenFor(actorId: string): string {
    return this.tokens.tokenFor(actorId);
  }

  authenticate(token: string | undefined): Sender {
    return this.tokens.authenticate(token);
  }

  send(request: SendRequest, auth: { token?: string } = {}): Promise<MailRow[]> {
    return this.mailbox.send(request, this.authenticate(auth.token));
  }

  list(request: { name?: string; unread?: boolean }, auth: { token?: string } = {}): MailRow[] {
    return this.mailbox.list(request, this.authenticate(auth.token));
  }

  read(id: string, auth: { token?: string } = {}): Promise<MailRow> {
    return this.mailbox.read(id, this.authenticate(auth.token));
  }

  reply(id: string, request: ReplyRequest, auth: { token?: string } = {}): Promise<MailRow> {
    return this.mailbox.reply(id, request, this.authenticate(auth.token));
  }

  /** A builder's terminal came up (started, restarted, adopted): mail waiting for it can be typed. */
  terminalUp(actorId: string): void {
    this.delivery.notify(actorId);
  }

  /** worker_died / contract violation, sent on the builder's behalf to its nearest live ancestor or the operator. */
  async notice(kind: "worker_died" | "contract_violation", info: Omit<NoticeInfo, "to">): Promise<void> {
    await this.mailbox.send(noticeMessage(kind, { ...info, to: "parent" }), { kind: "operator" });
  }

  private stored(rows: MailRow[]): void {
    fault("mail.after-store");
    for (const row of rows) {
      if (row.toId) this.delivery.notify(row.toId);
      this.host.onMail(row);
    }
    for (const effect of protocolEffects(rows)) {
      if (effect.kind === "worker_done") this.host.workerDone(effect.actorId);
    }
  }

  private info(row: ActorRow | undefined): ActorInfo | undefined {
    if (!row) return undefined;
    let deliver: "pty" | "inbox" = "inbox";
    try {
      // A builder on pipes has no terminal to type into: its mail stays in the inbox.
      deliver = row.pty === false ? "inbox" : this.host.profileOf(row).deliver;
    } catch {
      deliver = "inbox";
    }
    return { id: row.id, name: row.name, role: row.role, parentId: row.parentId, state: row.state, deliver };
  }
}
