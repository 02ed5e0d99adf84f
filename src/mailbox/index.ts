/**
 * Mail (DESIGN §8): the model, addressing and routing, identity, and delivery
 * into terminals. Talks to the rest of troupe only through `Store` and the
 * interfaces in ./types.ts (the supervisor implements them).
 */
export { Mailbox } from "./mailbox.js";
export { PtyDelivery, formatForTerminal, sanitizeForTerminal, deliveryOrder } from "./delivery.js";
export { TokenAuthority, loadOrCreateSecret, TOKEN_SECRET_META_KEY } from "./identity.js";
export { parseAddress, resolveAddress, isLive, NAME_PATTERN, type Address, type Recipient, type Resolution, type Rerouted } from "./address.js";
export { protocolEffect, protocolEffects, noticeMessage, type ProtocolEffect, type NoticeInfo } from "./protocol.js";
export {
  MESSAGE_TYPES,
  CUSTOM_TYPE_PATTERN,
  PRIORITIES,
  MAX_BODY_BYTES,
  MAX_SUBJECT_CHARS,
  MAX_PAYLOAD_BYTES,
  type ActorInfo,
  type Directory,
  type Sender,
  type SendRequest,
  type ReplyRequest,
  type ListRequest,
  type MailboxOptions,
  type TerminalPort,
  type PtyDeliveryOptions,
  type LoggerLike,
  type MessageType,
  type MailRow,
  type Priority,
} from "./types.js";
