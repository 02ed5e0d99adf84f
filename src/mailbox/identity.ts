/**
 * Sender identity (DESIGN §8, §11). Every agent process gets a secret
 * `TROUPE_TOKEN`: `<actorId>.<HMAC-SHA256(secret, actorId) in base64url>`.
 * The daemon derives the sender from it; a request without a token comes from
 * the operator. Tokens are compared in constant time and never logged nor
 * echoed in errors.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { TroupeError } from "../shared/errors.js";
import type { Store } from "../storage/types.js";
import { noopLogger, type LoggerLike, type Sender } from "./types.js";

/** Meta key holding the workspace's token secret (hex). */
export const TOKEN_SECRET_META_KEY = "mail.token_secret";
const SECRET_BYTES = 32;
const MIN_SECRET_BYTES = 16;
/** Incarnation ids are nanoids; accept that alphabet (no '.') and a sane length. */
const ACTOR_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const MAC_CHARS = 43; // base64url of 32 bytes, unpadded
const TOKEN_PATTERN = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;
const DOMAIN = "troupe-mail-token:v1:";

export class TokenAuthority {
  readonly #secret: Buffer;

  constructor(secret: Buffer) {
    if (!Buffer.isBuffer(secret) || secret.length < MIN_SECRET_BYTES) {
      throw new TroupeError("INVALID_ARGUMENT", `The mail token secret must be a Buffer of at least ${MIN_SECRET_BYTES} bytes.`);
    }
    this.#secret = Buffer.from(secret);
  }

  /** The value of `TROUPE_TOKEN` for one builder incarnation. */
  tokenFor(actorId: string): string {
    if (typeof actorId !== "string" || !ACTOR_ID_PATTERN.test(actorId)) {
      throw new TroupeError("INVALID_ARGUMENT", `Cannot issue a mail token for actor id ${JSON.stringify(String(actorId).slice(0, 80))}: ids are 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'.`);
    }
    return `${actorId}.${this.#mac(actorId)}`;
  }

  /** No token → the operator; a genuine token → that builder; anything else → UNAUTHORIZED. */
  authenticate(token: string | undefined): Sender {
    if (token === undefined) return { kind: "operator" };
    const match = typeof token === "string" && token.length <= 64 + 1 + MAC_CHARS ? TOKEN_PATTERN.exec(token) : null;
    if (!match) {
      throw new TroupeError("UNAUTHORIZED", "The mail token (TROUPE_TOKEN) is malformed. Only builders started by this workspace's troupe have a valid one; the operator sends without a token.");
    }
    const id = match[1]!;
    const given = Buffer.from(match[2]!, "latin1");
    const expected = Buffer.from(this.#mac(id), "latin1");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new TroupeError("UNAUTHORIZED", "The mail token (TROUPE_TOKEN) is not valid for this workspace. Only builders started by this workspace's troupe have a valid one; the operator sends without a token.");
    }
    return { kind: "agent", id };
  }

  #mac(actorId: string): string {
    return createHmac("sha256", this.#secret).update(DOMAIN + actorId, "utf8").digest("base64url");
  }
}

/**
 * The workspace's token secret, kept in the store's meta table
 * (`mail.token_secret`, hex) so that tokens survive daemon restarts.
 * Created (and made durable) on first use.
 */
export function loadOrCreateSecret(store: Store, options: { logger?: LoggerLike } = {}): Promise<Buffer> {
  // Concurrent first calls share one creation, so nobody is handed a secret that is then overwritten.
  const inFlight = creating.get(store);
  if (inFlight) return inFlight;
  const promise = loadOrCreate(store, options).finally(() => creating.delete(store));
  creating.set(store, promise);
  return promise;
}

const creating = new WeakMap<Store, Promise<Buffer>>();

async function loadOrCreate(store: Store, options: { logger?: LoggerLike }): Promise<Buffer> {
  const logger = options.logger ?? noopLogger;
  const stored = store.getMeta(TOKEN_SECRET_META_KEY);
  if (stored !== undefined) {
    if (/^(?:[0-9a-f]{2}){16,}$/i.test(stored)) return Buffer.from(stored, "hex");
    // Never log the value itself.
    logger.warn({ key: TOKEN_SECRET_META_KEY, length: stored.length }, "mail token secret in the store is malformed; issuing a new one (running agents' tokens stop working)");
  }
  const secret = randomBytes(SECRET_BYTES);
  await store.write((tx) => tx.setMeta(TOKEN_SECRET_META_KEY, secret.toString("hex")));
  return secret;
}
