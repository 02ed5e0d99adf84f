/**
 * The mailbox's view of the rest of troupe (DESIGN §8). The supervisor
 * implements these small interfaces; the mailbox never imports it, so it can
 * be tested with a real store and plain-object fakes.
 */
import type { LifeState, MailRow, Store } from "../storage/types.js";
import type { Priority } from "../shared/vocabulary.js";

export type { MailRow, Priority };
export { PRIORITIES } from "../shared/vocabulary.js";

/** What the mailbox needs to know about one incarnation of a builder. */
export interface ActorInfo {
  /** Incarnation id. */
  id: string;
  name: string;
  role: string | null;
  /** Incarnation id of the parent builder; null when the operator owns it (top level). */
  parentId: string | null;
  state: LifeState;
  /** How mail reaches it: typed into its terminal (and kept in the inbox), or inbox only. */
  deliver: "pty" | "inbox";
}

export interface Directory {
  /** Newest incarnation of `name`, tombstones included. */
  byName(name: string): ActorInfo | undefined;
  /** Any incarnation, tombstones included. */
  byId(id: string): ActorInfo | undefined;
  /** Every builder that is not destroying/destroyed. */
  live(): ActorInfo[];
}

/** Who is sending or reading: the operator (no token) or an authenticated builder incarnation. */
export type Sender = { kind: "operator" } | { kind: "agent"; id: string };

/** What a sender asks for and what a reply adds: the one definition is the public contract's. */
export type { ReplyRequest, SendRequest } from "../shared/contract.js";

export interface ListRequest {
  /** A builder name (newest incarnation) or "operator". Default: the viewer's own inbox (operator when none). */
  name?: string;
  /** Only messages not yet read. */
  unread?: boolean;
}

/** pino's Logger satisfies this; so does a plain object of no-ops. */
export interface LoggerLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MailboxOptions {
  store: Store;
  directory: Directory;
  /** Clock (epoch ms); default Date.now. */
  now?: () => number;
  logger?: LoggerLike;
  /** Called after the rows of one send/reply are durable (errors it throws are logged, never surfaced). */
  onStored?: (messages: MailRow[]) => void;
}

/** The builder terminals, as the delivery loop sees them. */
export interface TerminalPort {
  /** ms since epoch of the builder's last terminal output, or null if it has no live terminal */
  lastOutputAt(actorId: string): number | null;
  /** type text into the builder's terminal; resolves when written; rejects if no live terminal */
  write(actorId: string, data: string): Promise<void>;
}

export interface PtyDeliveryOptions {
  store: Store;
  directory: Directory;
  /** How long a terminal must have been quiet before a message is typed into it. */
  idleMs: number;
  now?: () => number;
  logger?: LoggerLike;
  terminal: TerminalPort;
}

/** Message types of DESIGN §8; custom types match CUSTOM_TYPE_PATTERN. */
export const MESSAGE_TYPES = ["status", "question", "result", "error", "dispatch", "escalation", "worker_done", "worker_died"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const CUSTOM_TYPE_PATTERN = /^x-[a-z0-9-]{1,40}$/;

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_SUBJECT_CHARS = 200;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const noopLogger: LoggerLike = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
