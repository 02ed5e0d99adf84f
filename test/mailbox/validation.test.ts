import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES, Mailbox, type SendRequest, type Sender } from "../../src/mailbox/index.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { createLogger } from "../../src/supervisor/log.js";
import { FakeDirectory, openTestStore, type TestStore } from "./helpers.js";

const operator: Sender = { kind: "operator" };

describe("message validation", () => {
  let ts: TestStore;
  let mailbox: Mailbox;

  beforeEach(async () => {
    ts = await openTestStore();
    const dir = new FakeDirectory();
    dir.add("a");
    // A pino logger (the supervisor's) fits the mailbox's logger option.
    mailbox = new Mailbox({ store: ts.store, directory: dir, logger: createLogger({ level: "silent" }) });
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  async function rejects(request: Record<string, unknown>, code: string): Promise<void> {
    const before = ts.store.listMail().length;
    const error = await mailbox.send({ to: "a", body: "x", ...request } as SendRequest, operator).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isTroupeError(error), `expected ${code}, got ${String(error)}`).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    expect(ts.store.listMail().length, "nothing may be stored").toBe(before);
  }

  it("a body of exactly 1 MiB is accepted", async () => {
    const [row] = await mailbox.send({ to: "a", body: "é".repeat(MAX_BODY_BYTES / 2) }, operator);
    expect(Buffer.byteLength(row!.body)).toBe(MAX_BODY_BYTES);
  });

  it("a body of 1 MiB + 1 byte is too large (counted in UTF-8 bytes)", async () => {
    await rejects({ body: "x".repeat(MAX_BODY_BYTES + 1) }, "MESSAGE_TOO_LARGE");
    await rejects({ body: "é".repeat(MAX_BODY_BYTES / 2) + "x" }, "MESSAGE_TOO_LARGE");
  });

  it("the body must be a string", async () => {
    await rejects({ body: undefined }, "INVALID_ARGUMENT");
    await rejects({ body: 12 }, "INVALID_ARGUMENT");
  });

  it("a subject of 200 characters is accepted, 201 is too long", async () => {
    const [row] = await mailbox.send({ to: "a", body: "x", subject: "s".repeat(200) }, operator);
    expect(row!.subject).toHaveLength(200);
    await rejects({ subject: "s".repeat(201) }, "MESSAGE_TOO_LARGE");
  });

  it("a subject is one line", async () => {
    await rejects({ subject: "two\nlines" }, "INVALID_ARGUMENT");
    await rejects({ subject: "esc\x1b[2J" }, "INVALID_ARGUMENT");
  });

  it("types: the standard ones and x-custom", async () => {
    for (const type of ["status", "question", "result", "error", "dispatch", "escalation", "worker_done", "worker_died", "x-review", "x-a1-b2"]) {
      const [row] = await mailbox.send({ to: "a", body: "x", type }, operator);
      expect(row!.type).toBe(type);
    }
  });

  it.each(["chat", "x-", "x-Upper", "X-custom", "x-" + "a".repeat(41), "x_custom", ""])("type %j is rejected", async (type) => {
    await rejects({ type }, "INVALID_ARGUMENT");
  });

  it("priorities", async () => {
    for (const priority of ["low", "normal", "high", "urgent"] as const) {
      const [row] = await mailbox.send({ to: "a", body: "x", priority }, operator);
      expect(row!.priority).toBe(priority);
    }
    await rejects({ priority: "critical" }, "INVALID_ARGUMENT");
  });

  it("payload: JSON only, at most 64 KiB", async () => {
    const [row] = await mailbox.send({ to: "a", body: "x", payload: { list: [1, "two", null], nested: { ok: true } } }, operator);
    expect(row!.payload).toEqual({ list: [1, "two", null], nested: { ok: true } });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await rejects({ payload: circular }, "INVALID_ARGUMENT");
    await rejects({ payload: 10n }, "INVALID_ARGUMENT");
    await rejects({ payload: () => 1 }, "INVALID_ARGUMENT");
    await rejects({ payload: { big: "x".repeat(64 * 1024) } }, "MESSAGE_TOO_LARGE");
  });

  it("threadId must be a sane id", async () => {
    await rejects({ threadId: "../../x" }, "INVALID_ARGUMENT");
    await rejects({ threadId: "" }, "INVALID_ARGUMENT");
    await rejects({ threadId: "t".repeat(65) }, "INVALID_ARGUMENT");
  });

  it("the request must be an object", async () => {
    const error = await mailbox.send(null as unknown as SendRequest, operator).catch((e: unknown) => e);
    expect(isTroupeError(error, "INVALID_ARGUMENT")).toBe(true);
  });

  it("a store write that fails stores nothing and reaches the caller", async () => {
    const failing = Object.create(ts.store) as typeof ts.store;
    failing.write = () => Promise.reject(new Error("disk full"));
    const mb = new Mailbox({ store: failing, directory: new FakeDirectory() });
    await expect(mb.send({ to: "operator", body: "x" }, operator)).rejects.toThrow("disk full");
    expect(ts.store.listMail()).toEqual([]);
  });
});
