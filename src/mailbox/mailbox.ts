/**
 * The mail model (DESIGN §8): validate, resolve the address, store every
 * recipient's copy in one durable write, then tell the supervisor.
 */
import { nanoid } from "nanoid";
import { TroupeError } from "../shared/errors.js";
import type { MailRow, Store } from "../storage/types.js";
import { NAME_PATTERN } from "../shared/vocabulary.js";
import { parseAddress, resolveAddress, type Recipient, type Rerouted } from "./address.js";
import {
  MAX_SUBJECT_CHARS,
  noopLogger,
  type ActorInfo,
  type Directory,
  type ListRequest,
  type LoggerLike,
  type MailboxOptions,
  type ReplyRequest,
  type SendRequest,
  type Sender,
} from "./types.js";
import {
  requireObject,
  validateBody,
  validateMessageId,
  validatePayload,
  validatePriority,
  validateSubject,
  validateThreadId,
  validateType,
} from "./validate.js";

/** Who a message is from, as stored. `info` is the builder it speaks for (null: the operator). */
interface From {
  from: string;
  fromId: string | null;
  info: ActorInfo | null;
}

type Content = Pick<MailRow, "type" | "subject" | "body" | "priority" | "payload">;

export class Mailbox {
  private readonly store: Store;
  private readonly directory: Directory;
  private readonly now: () => number;
  private readonly logger: LoggerLike;
  private readonly onStored: ((messages: MailRow[]) => void) | undefined;

  constructor(options: MailboxOptions) {
    this.store = options.store;
    this.directory = options.directory;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? noopLogger;
    this.onStored = options.onStored;
  }

  /**
   * Sends one message (one stored row per recipient, all in one durable
   * write). Resolves with the stored rows once they are durable; on any error
   * nothing is stored.
   */
  async send(request: SendRequest, sender: Sender): Promise<MailRow[]> {
    const req = requireObject(request, "A send request");
    const content = validateContent(req);
    const threadId = validateThreadId(req.threadId);
    const from = this.resolveFrom(sender, req.from);
    const address = parseAddress(req.to);
    const resolution = resolveAddress(req.to as string, address, from.info, this.directory);
    const payload = resolution.rerouted ? withReroute(content.payload, resolution.rerouted) : content.payload;
    const rows = this.rows(resolution.recipients, from, { ...content, payload }, resolution.requestedTo, threadId);
    if (resolution.rerouted) {
      this.logger.info({ from: from.from, intended: resolution.rerouted.intended, to: resolution.rerouted.to, reason: resolution.rerouted.reason }, "mail to parent rerouted: the parent is not live");
    }
    return this.commit(rows);
  }

  /**
   * The inbox of a builder (its newest incarnation) or of the operator, oldest
   * first. Without a name: the viewer's own inbox (the operator's when no viewer).
   */
  list(request: ListRequest = {}, viewer?: Sender): MailRow[] {
    const req = requireObject(request, "A mail query");
    const unread = req.unread === true;
    let name = req.name as string | undefined;
    if (name === undefined && viewer?.kind === "agent") {
      const self = this.directory.byId(viewer.id);
      if (!self) throw new TroupeError("UNAUTHORIZED", "This builder is not registered with the supervisor, so it has no inbox.", {});
      return this.inboxOf(self.id, unread);
    }
    if (name === undefined || name === "operator") {
      const rows = this.store.listMail({ to: "operator", toId: null, ...(unread ? { unread: true } : {}) });
      return sortOldestFirst(rows.filter((r) => r.toId === null && r.to === "operator" && (!unread || r.readAt === null)));
    }
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw new TroupeError("INVALID_ARGUMENT", `Invalid builder name ${JSON.stringify(String(name).slice(0, 80))}: 1 to 63 characters of a-z, 0-9, '.', '_' or '-', or "operator".`, {});
    }
    const info = this.directory.byName(name);
    if (!info) throw new TroupeError("NOT_FOUND", `No builder named "${name}". Run \`troupe status --all\` to see the builders.`, { name });
    return this.inboxOf(info.id, unread);
  }

  /** Returns the message and marks it read (durably). Only its recipient or the operator may read it. */
  async read(id: string, reader: Sender): Promise<MailRow> {
    const message = this.getAuthorized(id, reader);
    if (message.readAt !== null) return message;
    const readAt = this.now();
    await this.store.write((tx) => tx.updateMail(message.id, { readAt }));
    return this.store.getMail(message.id) ?? { ...message, readAt };
  }

  /**
   * Replies in the same thread to the other side of message `id`: its sender
   * when the replier is its recipient (or the operator, standing in for
   * anyone), its recipient when the replier sent it.
   */
  async reply(id: string, request: ReplyRequest, sender: Sender): Promise<MailRow> {
    const messageId = validateMessageId(id);
    const req = requireObject(request, "A reply");
    const content = validateContent(req);
    const original = this.store.getMail(messageId);
    if (!original) throw new TroupeError("NOT_FOUND", `No message with id ${messageId}. Run \`troupe mail\` to see your messages.`, { id: messageId });
    const from = this.resolveFrom(sender, undefined);
    const isRecipient = sender.kind === "agent" ? original.toId === sender.id : original.toId === null && original.to === "operator";
    const isSender = sender.kind === "agent" ? original.fromId === sender.id : original.fromId === null && original.from === "operator";
    let target: Recipient;
    if (isRecipient || (!isSender && sender.kind === "operator")) {
      target = this.resolveParty(original.from, original.fromId, "sender");
    } else if (isSender) {
      target = this.resolveParty(original.to, original.toId, "recipient");
    } else {
      throw new TroupeError("UNAUTHORIZED", `Message ${original.id} is between ${original.from} and ${original.to}; only they (or the operator) may reply to it.`, { id: original.id });
    }
    if (content.subject === null && original.subject !== null) {
      const re = original.subject.startsWith("Re: ") ? original.subject : `Re: ${original.subject}`;
      content.subject = [...re].slice(0, MAX_SUBJECT_CHARS).join("");
    }
    const rows = this.rows([target], from, content, null, original.threadId);
    const [row] = await this.commit(rows);
    return row!;
  }

  // ---- internals -------------------------------------------------------------

  private inboxOf(actorId: string, unread: boolean): MailRow[] {
    const rows = this.store.listMail({ toId: actorId, ...(unread ? { unread: true } : {}) });
    return sortOldestFirst(rows.filter((r) => r.toId === actorId && (!unread || r.readAt === null)));
  }

  private getAuthorized(id: string, reader: Sender): MailRow {
    const messageId = validateMessageId(id);
    const message = this.store.getMail(messageId);
    if (!message) throw new TroupeError("NOT_FOUND", `No message with id ${messageId}. Run \`troupe mail\` to see your messages.`, { id: messageId });
    if (reader.kind === "agent" && message.toId !== reader.id) {
      throw new TroupeError("UNAUTHORIZED", `Message ${message.id} is addressed to ${message.to}; only its recipient (or the operator) may read it.`, { id: message.id });
    }
    return message;
  }

  /** The other party of a stored message, which must still be able to receive mail. */
  private resolveParty(name: string, id: string | null, role: "sender" | "recipient"): Recipient {
    if (id === null) {
      if (name === "operator") return { to: "operator", toId: null };
      throw new TroupeError("UNKNOWN_RECIPIENT", `The ${role} of that message (${name}) has no mailbox to reply to.`, { to: name });
    }
    const info = this.directory.byId(id);
    if (!info) throw new TroupeError("UNKNOWN_RECIPIENT", `The ${role} of that message (${name}) no longer exists. Run \`troupe status\` to see the builders.`, { to: name, id });
    if (info.state === "destroying" || info.state === "destroyed") {
      const newer = this.directory.byName(info.name);
      const hint = newer && newer.id !== info.id ? ` A newer "${info.name}" exists: send to it by name.` : "";
      throw new TroupeError("DESTROYED", `Builder "${info.name}" ${info.state === "destroying" ? "is being destroyed" : "was destroyed"}; it cannot receive the reply.${hint}`, { to: info.name, id: info.id, state: info.state });
    }
    return { to: info.name, toId: info.id };
  }

  private resolveFrom(sender: Sender, requestedFrom: unknown): From {
    if (typeof sender !== "object" || sender === null || (sender.kind !== "operator" && sender.kind !== "agent")) {
      throw new TroupeError("UNAUTHORIZED", "Unknown sender.", {});
    }
    if (sender.kind === "agent") {
      const info = this.directory.byId(sender.id);
      if (!info) throw new TroupeError("UNAUTHORIZED", "This builder is not registered with the supervisor; it cannot send mail.", {});
      if (info.state === "destroyed") {
        throw new TroupeError("DESTROYED", `Builder "${info.name}" was destroyed; it can no longer send mail.`, { name: info.name, id: info.id });
      }
      if (requestedFrom !== undefined && requestedFrom !== null && requestedFrom !== info.name) {
        throw new TroupeError("UNAUTHORIZED", `Only the operator may set from: builder "${info.name}" always sends as itself.`, { name: info.name });
      }
      return { from: info.name, fromId: info.id, info };
    }
    if (requestedFrom === undefined || requestedFrom === null || requestedFrom === "operator") {
      return { from: "operator", fromId: null, info: null };
    }
    if (typeof requestedFrom !== "string" || !NAME_PATTERN.test(requestedFrom)) {
      throw new TroupeError("INVALID_ARGUMENT", `Invalid from ${JSON.stringify(String(requestedFrom).slice(0, 80))}: a builder name or "operator".`, {});
    }
    const info = this.directory.byName(requestedFrom);
    if (!info) {
      throw new TroupeError("INVALID_ARGUMENT", `Cannot send from "${requestedFrom}": no builder has that name. Run \`troupe status --all\` to see the builders.`, { from: requestedFrom });
    }
    return { from: info.name, fromId: info.id, info };
  }

  private rows(recipients: Recipient[], from: From, content: Content, requestedTo: string | null, threadId: string | null): MailRow[] {
    const createdAt = this.now();
    const ids = recipients.map(() => nanoid());
    // A lone message starts a thread named after itself; a fan-out shares a fresh one.
    const thread = threadId ?? (recipients.length === 1 ? ids[0]! : nanoid());
    return recipients.map((recipient, i) => ({
      id: ids[i]!,
      from: from.from,
      fromId: from.fromId,
      to: recipient.to,
      toId: recipient.toId,
      requestedTo: requestedTo !== null && requestedTo !== recipient.to ? requestedTo : null,
      type: content.type,
      subject: content.subject,
      body: content.body,
      priority: content.priority,
      threadId: thread,
      payload: content.payload,
      createdAt,
      deliveredAt: null,
      readAt: null,
    }));
  }

  private async commit(rows: MailRow[]): Promise<MailRow[]> {
    await this.store.write((tx) => {
      for (const row of rows) tx.insertMail(row);
    });
    this.logger.debug({ ids: rows.map((r) => r.id), from: rows[0]?.from, to: rows.map((r) => r.to), type: rows[0]?.type }, "mail stored");
    if (this.onStored) {
      try {
        this.onStored(rows.map((r) => ({ ...r })));
      } catch (error) {
        this.logger.error({ err: error }, "mail onStored listener failed (the mail is stored)");
      }
    }
    return rows;
  }
}

function validateContent(req: Record<string, unknown>): Content {
  return {
    body: validateBody(req.body),
    subject: validateSubject(req.subject),
    type: validateType(req.type),
    priority: validatePriority(req.priority),
    payload: validatePayload(req.payload),
  };
}

/** Records a reroute in the payload (`payload.rerouted`); a non-object payload is kept under `payload.value`. */
function withReroute(payload: unknown, rerouted: Rerouted): unknown {
  if (payload !== null && typeof payload === "object" && !Array.isArray(payload)) {
    return { ...(payload as Record<string, unknown>), rerouted };
  }
  return payload === null ? { rerouted } : { value: payload, rerouted };
}

function sortOldestFirst(rows: MailRow[]): MailRow[] {
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => a.row.createdAt - b.row.createdAt || a.index - b.index)
    .map((x) => x.row);
}
