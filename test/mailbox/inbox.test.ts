import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Mailbox, type Sender } from "../../src/mailbox/index.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { FakeClock, FakeDirectory, openTestStore, type TestStore } from "./helpers.js";

const operator: Sender = { kind: "operator" };

describe("inbox: list, read, reply", () => {
  let ts: TestStore;
  let dir: FakeDirectory;
  let mailbox: Mailbox;
  let clock: FakeClock;
  const agent = (name: string): Sender => ({ kind: "agent", id: dir.byName(name)!.id });

  beforeEach(async () => {
    ts = await openTestStore();
    dir = new FakeDirectory();
    dir.add("lead");
    dir.add("a", { parent: "lead" });
    dir.add("b", { parent: "lead" });
    clock = new FakeClock();
    mailbox = new Mailbox({ store: ts.store, directory: dir, now: clock.now });
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  async function codeOf(promise: Promise<unknown>): Promise<string | null> {
    return promise.then(
      () => null,
      (e: unknown) => (isTroupeError(e) ? e.code : String(e)),
    );
  }

  it("lists a builder's inbox oldest first, and only its own mail", async () => {
    await mailbox.send({ to: "a", body: "one" }, operator);
    clock.advance(10);
    await mailbox.send({ to: "b", body: "not for a" }, operator);
    clock.advance(10);
    await mailbox.send({ to: "a", body: "two", priority: "urgent" }, agent("lead"));
    clock.advance(10);
    await mailbox.send({ to: "@children", body: "three" }, agent("lead"));
    expect(mailbox.list({ name: "a" }).map((m) => m.body)).toEqual(["one", "two", "three"]);
    expect(mailbox.list({ name: "b" }).map((m) => m.body)).toEqual(["not for a", "three"]);
  });

  it("lists the operator's inbox (no name, or operator)", async () => {
    await mailbox.send({ to: "operator", body: "from a" }, agent("a"));
    await mailbox.send({ to: "parent", body: "from lead" }, agent("lead"));
    await mailbox.send({ to: "a", body: "to a" }, operator);
    expect(mailbox.list({ name: "operator" }).map((m) => m.body)).toEqual(["from a", "from lead"]);
    expect(mailbox.list().map((m) => m.body)).toEqual(["from a", "from lead"]);
  });

  it("without a name, a builder viewer sees its own inbox", async () => {
    await mailbox.send({ to: "a", body: "for a" }, operator);
    await mailbox.send({ to: "operator", body: "for op" }, agent("a"));
    expect(mailbox.list({}, agent("a")).map((m) => m.body)).toEqual(["for a"]);
    expect(mailbox.list({}, operator).map((m) => m.body)).toEqual(["for op"]);
  });

  it("the inbox is the newest incarnation's", async () => {
    await mailbox.send({ to: "a", body: "old life" }, operator);
    dir.setState("a", "destroyed");
    expect(mailbox.list({ name: "a" }).map((m) => m.body)).toEqual(["old life"]); // tombstone still readable
    dir.add("a", { parent: "lead" });
    await mailbox.send({ to: "a", body: "new life" }, operator);
    expect(mailbox.list({ name: "a" }).map((m) => m.body)).toEqual(["new life"]);
  });

  it("unknown or malformed names are errors", () => {
    expect(() => mailbox.list({ name: "ghost" })).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    expect(() => mailbox.list({ name: "Bad Name" })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("read marks read durably; unread lists only unread", async () => {
    const [m1] = await mailbox.send({ to: "a", body: "one" }, operator);
    const [m2] = await mailbox.send({ to: "a", body: "two" }, operator);
    expect(mailbox.list({ name: "a", unread: true }).map((m) => m.id)).toEqual([m1!.id, m2!.id]);
    clock.advance(5);
    const read = await mailbox.read(m1!.id, agent("a"));
    expect(read).toMatchObject({ id: m1!.id, body: "one", readAt: clock.t });
    expect(ts.store.getMail(m1!.id)!.readAt).toBe(clock.t);
    expect(mailbox.list({ name: "a", unread: true }).map((m) => m.id)).toEqual([m2!.id]);
    expect(mailbox.list({ name: "a" }).map((m) => m.id)).toEqual([m1!.id, m2!.id]);
    // Reading again keeps the first readAt.
    clock.advance(5);
    expect((await mailbox.read(m1!.id, agent("a"))).readAt).toBe(clock.t - 5);

    const reopened = await ts.reopen();
    expect(reopened.getMail(m1!.id)!.readAt).toBe(clock.t - 5);
  });

  it("only the recipient or the operator may read a message", async () => {
    const [m] = await mailbox.send({ to: "a", body: "private" }, agent("lead"));
    expect(await codeOf(mailbox.read(m!.id, agent("b")))).toBe("UNAUTHORIZED");
    expect(await codeOf(mailbox.read(m!.id, agent("lead")))).toBe("UNAUTHORIZED"); // the sender is not the recipient
    expect(ts.store.getMail(m!.id)!.readAt).toBeNull();
    expect((await mailbox.read(m!.id, operator)).readAt).not.toBeNull();
    expect(await codeOf(mailbox.read("nope", operator))).toBe("NOT_FOUND");
    expect(await codeOf(mailbox.read("../x", operator))).toBe("INVALID_ARGUMENT");
  });

  it("the recipient replies to the sender in the same thread", async () => {
    const [q] = await mailbox.send({ to: "lead", body: "which db?", type: "question", subject: "db" }, agent("a"));
    clock.advance(1);
    const answer = await mailbox.reply(q!.id, { body: "sqlite", type: "result" }, agent("lead"));
    expect(answer).toMatchObject({ from: "lead", to: "a", toId: dir.byName("a")!.id, threadId: q!.threadId, subject: "Re: db", type: "result", body: "sqlite" });
    expect(ts.store.getMail(answer.id)).toEqual(answer);
    // The original sender replies back: it goes to the other side again.
    const back = await mailbox.reply(answer.id, { body: "thanks", subject: "ok" }, agent("a"));
    expect(back).toMatchObject({ from: "a", to: "lead", threadId: q!.threadId, subject: "ok", type: "status" });
    // Re: is not stacked.
    const again = await mailbox.reply(answer.id, { body: "more" }, agent("a"));
    expect(again.subject).toBe("Re: db");
    expect(ts.store.listMail({ threadId: q!.threadId }).length).toBe(4);
  });

  it("a sender replies to its own message: it goes to the recipient", async () => {
    const [m] = await mailbox.send({ to: "b", body: "x" }, agent("a"));
    const follow = await mailbox.reply(m!.id, { body: "also y" }, agent("a"));
    expect(follow).toMatchObject({ from: "a", to: "b", threadId: m!.threadId });
  });

  it("the operator replies to mail it received, and to a builder's mail as itself", async () => {
    const [m] = await mailbox.send({ to: "operator", body: "help", type: "escalation" }, agent("b"));
    const r = await mailbox.reply(m!.id, { body: "on it", priority: "high" }, operator);
    expect(r).toMatchObject({ from: "operator", fromId: null, to: "b", priority: "high", threadId: m!.threadId });
    const [n] = await mailbox.send({ to: "lead", body: "q" }, agent("a"));
    const r2 = await mailbox.reply(n!.id, { body: "answered by the operator" }, operator);
    expect(r2).toMatchObject({ from: "operator", to: "a" });
  });

  it("a builder outside the conversation may not reply; a destroyed other side is an error; nothing stored", async () => {
    const [m] = await mailbox.send({ to: "lead", body: "x" }, agent("a"));
    const count = ts.store.listMail().length;
    expect(await codeOf(mailbox.reply(m!.id, { body: "butting in" }, agent("b")))).toBe("UNAUTHORIZED");
    dir.setState("a", "destroyed");
    expect(await codeOf(mailbox.reply(m!.id, { body: "too late" }, agent("lead")))).toBe("DESTROYED");
    expect(await codeOf(mailbox.reply("missing", { body: "x" }, operator))).toBe("NOT_FOUND");
    expect(await codeOf(mailbox.reply(m!.id, { body: "x".repeat(1024 * 1024 + 1) }, agent("lead")))).toBe("MESSAGE_TOO_LARGE");
    expect(ts.store.listMail().length).toBe(count);
  });
});
