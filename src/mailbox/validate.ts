/**
 * Validation of message fields (DESIGN §8, §11): bad input gets a clear error
 * and changes nothing.
 */
import { TroupeError } from "../shared/errors.js";
import { PRIORITIES, isOneOf, type Priority } from "../shared/vocabulary.js";
import { CUSTOM_TYPE_PATTERN, MAX_BODY_BYTES, MAX_PAYLOAD_BYTES, MAX_SUBJECT_CHARS, MESSAGE_TYPES } from "./types.js";

/** Thread ids we mint are nanoids; accept that alphabet. */
export const THREAD_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Message ids too (for read/reply lookups). */
export const MESSAGE_ID_PATTERN = THREAD_ID_PATTERN;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function validateBody(body: unknown): string {
  if (typeof body !== "string") {
    throw new TroupeError("INVALID_ARGUMENT", "A message body must be a string.", { bodyType: typeof body });
  }
  // Every UTF-16 unit is at least one UTF-8 byte, so a long string is over the limit without counting.
  const bytes = body.length > MAX_BODY_BYTES ? body.length : Buffer.byteLength(body, "utf8");
  if (bytes > MAX_BODY_BYTES) {
    throw new TroupeError("MESSAGE_TOO_LARGE", `The message body is larger than the limit of ${MAX_BODY_BYTES} bytes (1 MiB). Put large content in a file in your worktree and send its path.`, { limit: MAX_BODY_BYTES, atLeastBytes: bytes });
  }
  return body;
}

export function validateSubject(subject: unknown): string | null {
  if (subject === undefined || subject === null) return null;
  if (typeof subject !== "string") {
    throw new TroupeError("INVALID_ARGUMENT", "A message subject must be a string.", { subjectType: typeof subject });
  }
  const chars = [...subject].length;
  if (chars > MAX_SUBJECT_CHARS) {
    throw new TroupeError("MESSAGE_TOO_LARGE", `The subject is ${chars} characters; the limit is ${MAX_SUBJECT_CHARS}. Put the rest in the body.`, { chars, limit: MAX_SUBJECT_CHARS });
  }
  if (CONTROL.test(subject)) {
    throw new TroupeError("INVALID_ARGUMENT", "A subject is one line: no newlines or other control characters (put them in the body).");
  }
  return subject.length === 0 ? null : subject;
}

export function validateType(type: unknown): string {
  if (type === undefined || type === null) return "status";
  if (typeof type === "string" && ((MESSAGE_TYPES as readonly string[]).includes(type) || CUSTOM_TYPE_PATTERN.test(type))) return type;
  throw new TroupeError(
    "INVALID_ARGUMENT",
    `Invalid message type ${JSON.stringify(typeof type === "string" ? type.slice(0, 60) : type)}: use one of ${MESSAGE_TYPES.join(", ")}, or a custom type x-<name> (a-z, 0-9, '-', up to 40 characters).`,
    { type: typeof type === "string" ? type.slice(0, 60) : null },
  );
}

export function validatePriority(priority: unknown): Priority {
  if (priority === undefined || priority === null) return "normal";
  if (isOneOf(PRIORITIES, priority)) return priority;
  throw new TroupeError("INVALID_ARGUMENT", `Invalid priority ${JSON.stringify(String(priority).slice(0, 40))}: use low, normal, high or urgent.`, {
    priority: typeof priority === "string" ? priority.slice(0, 40) : null,
  });
}

export function validateThreadId(threadId: unknown): string | null {
  if (threadId === undefined || threadId === null) return null;
  if (typeof threadId === "string" && THREAD_ID_PATTERN.test(threadId)) return threadId;
  throw new TroupeError("INVALID_ARGUMENT", "Invalid threadId: 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (use the threadId of a message you received).", {});
}

/** Normalises the payload to what JSON keeps of it (so the stored value is exactly what readers get). */
export function validatePayload(payload: unknown): unknown {
  if (payload === undefined || payload === null) return null;
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new TroupeError("INVALID_ARGUMENT", `The payload is not JSON-serialisable (${(error as Error).message}).`, {});
  }
  if (json === undefined) {
    throw new TroupeError("INVALID_ARGUMENT", `The payload is not JSON-serialisable (a ${typeof payload}).`, {});
  }
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new TroupeError("MESSAGE_TOO_LARGE", `The payload is ${bytes} bytes as JSON; the limit is ${MAX_PAYLOAD_BYTES} bytes (64 KiB).`, { bytes, limit: MAX_PAYLOAD_BYTES });
  }
  return JSON.parse(json) as unknown;
}

export function validateMessageId(id: unknown): string {
  if (typeof id === "string" && MESSAGE_ID_PATTERN.test(id)) return id;
  throw new TroupeError("INVALID_ARGUMENT", "Invalid message id: 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (see `troupe mail`).", {});
}

export function requireObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TroupeError("INVALID_ARGUMENT", `${what} must be an object.`, {});
  }
  return value as Record<string, unknown>;
}
