import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Mailbox, TOKEN_SECRET_META_KEY, TokenAuthority, loadOrCreateSecret } from "../../src/mailbox/index.js";
import { TroupeError, isTroupeError } from "../../src/shared/errors.js";
import { FakeDirectory, openTestStore, type TestStore } from "./helpers.js";

function unauthorized(fn: () => unknown, token: string): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(isTroupeError(error, "UNAUTHORIZED"), `expected UNAUTHORIZED, got ${String(error)}`).toBe(true);
  // The token is a secret: never echoed back.
  const text = JSON.stringify((error as TroupeError).toJSON()) + (error as Error).message;
  if (token.length > 8) expect(text).not.toContain(token);
  const mac = token.split(".")[1];
  if (mac && mac.length > 8) expect(text).not.toContain(mac);
}

describe("TokenAuthority", () => {
  const authority = new TokenAuthority(randomBytes(32));

  it("no token is the operator", () => {
    expect(authority.authenticate(undefined)).toEqual({ kind: "operator" });
  });

  it("a token names its builder and authenticates as it", () => {
    const token = authority.tokenFor("V1StGXR8_Z5jdHi6B-myT");
    expect(token.startsWith("V1StGXR8_Z5jdHi6B-myT.")).toBe(true);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(authority.authenticate(token)).toEqual({ kind: "agent", id: "V1StGXR8_Z5jdHi6B-myT" });
  });

  it("the same id always gets the same token; different ids different ones", () => {
    expect(authority.tokenFor("abc")).toBe(authority.tokenFor("abc"));
    expect(authority.tokenFor("abc")).not.toBe(authority.tokenFor("abd"));
  });

  it("a token with the id swapped is rejected", () => {
    const mac = authority.tokenFor("alice").split(".")[1]!;
    const forged = `bob.${mac}`;
    unauthorized(() => authority.authenticate(forged), forged);
  });

  it("a token of another secret is rejected", () => {
    const other = new TokenAuthority(randomBytes(32)).tokenFor("alice");
    unauthorized(() => authority.authenticate(other), other);
  });

  it("truncated, padded, altered or garbage tokens are rejected", () => {
    const token = authority.tokenFor("alice");
    const lastChar = token.at(-1)!;
    const altered = token.slice(0, -1) + (lastChar === "A" ? "B" : "A");
    for (const bad of [token.slice(0, -1), token.slice(0, 10), token + "A", token + "=", altered, "", "alice", ".", "alice.", `.${token.split(".")[1]}`, "a.b.c", token.replace(".", ":"), " " + token]) {
      unauthorized(() => authority.authenticate(bad), bad);
    }
    unauthorized(() => authority.authenticate(12 as unknown as string), "");
  });

  it("refuses weak secrets and odd ids", () => {
    expect(() => new TokenAuthority(Buffer.alloc(4))).toThrow(TroupeError);
    expect(() => authority.tokenFor("a.b")).toThrow(TroupeError);
    expect(() => authority.tokenFor("")).toThrow(TroupeError);
  });
});

describe("loadOrCreateSecret", () => {
  let ts: TestStore;

  beforeEach(async () => {
    ts = await openTestStore();
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  it("creates a secret once, keeps it in meta as hex, and tokens survive a reopen", async () => {
    expect(ts.store.getMeta(TOKEN_SECRET_META_KEY)).toBeUndefined();
    const secret = await loadOrCreateSecret(ts.store);
    expect(secret.length).toBe(32);
    expect(ts.store.getMeta(TOKEN_SECRET_META_KEY)).toBe(secret.toString("hex"));
    expect((await loadOrCreateSecret(ts.store)).equals(secret)).toBe(true);

    const token = new TokenAuthority(secret).tokenFor("builder-1");
    const reopened = await ts.reopen();
    const again = await loadOrCreateSecret(reopened);
    expect(again.equals(secret)).toBe(true);
    expect(new TokenAuthority(again).authenticate(token)).toEqual({ kind: "agent", id: "builder-1" });
  });

  it("a different workspace has a different secret", async () => {
    const other = await openTestStore();
    try {
      const a = await loadOrCreateSecret(ts.store);
      const b = await loadOrCreateSecret(other.store);
      expect(a.equals(b)).toBe(false);
      unauthorized(() => new TokenAuthority(b).authenticate(new TokenAuthority(a).tokenFor("x")), new TokenAuthority(a).tokenFor("x"));
    } finally {
      await other.cleanup();
    }
  });
});

describe("identity end to end: token → sender → mail", () => {
  let ts: TestStore;

  beforeEach(async () => {
    ts = await openTestStore();
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  it("the sender is derived from the token; a forged from is refused", async () => {
    const dir = new FakeDirectory();
    const lead = dir.add("lead");
    const worker = dir.add("worker", { parent: "lead" });
    const authority = new TokenAuthority(await loadOrCreateSecret(ts.store));
    const mailbox = new Mailbox({ store: ts.store, directory: dir });

    const [fromWorker] = await mailbox.send({ to: "parent", body: "done" }, authority.authenticate(authority.tokenFor(worker.id)));
    expect(fromWorker).toMatchObject({ from: "worker", fromId: worker.id, to: "lead", toId: lead.id });

    const [fromOperator] = await mailbox.send({ to: "worker", body: "hi" }, authority.authenticate(undefined));
    expect(fromOperator).toMatchObject({ from: "operator", fromId: null });

    const before = ts.store.listMail().length;
    const error = await mailbox.send({ to: "worker", body: "x", from: "lead" }, authority.authenticate(authority.tokenFor(worker.id))).catch((e: unknown) => e);
    expect(isTroupeError(error, "UNAUTHORIZED")).toBe(true);
    expect((error as Error).message).toMatch(/only the operator may set from/i);
    expect(ts.store.listMail().length).toBe(before);
  });
});

describe("loadOrCreateSecret concurrency", () => {
  it("concurrent first calls agree on one secret", async () => {
    const ts = await openTestStore();
    try {
      const [a, b] = await Promise.all([loadOrCreateSecret(ts.store), loadOrCreateSecret(ts.store)]);
      expect(a.equals(b)).toBe(true);
      expect(ts.store.getMeta(TOKEN_SECRET_META_KEY)).toBe(a.toString("hex"));
    } finally {
      await ts.cleanup();
    }
  });
});
