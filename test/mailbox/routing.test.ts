import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Mailbox, type MailRow, type Sender } from "../../src/mailbox/index.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { FakeClock, FakeDirectory, openTestStore, type TestStore } from "./helpers.js";

const operator: Sender = { kind: "operator" };

describe("mail addressing and routing", () => {
  let ts: TestStore;
  let dir: FakeDirectory;
  let mailbox: Mailbox;
  let stored: MailRow[][];
  const clock = new FakeClock();
  const agent = (name: string): Sender => ({ kind: "agent", id: dir.byName(name)!.id });

  beforeEach(async () => {
    ts = await openTestStore();
    dir = new FakeDirectory();
    // operator ─┬─ lead (lead) ─┬─ a (reviewer)
    //           │               └─ b (reviewer) ── c
    //           └─ solo (reviewer)
    dir.add("lead", { role: "lead" });
    dir.add("a", { parent: "lead", role: "reviewer" });
    dir.add("b", { parent: "lead", role: "reviewer" });
    dir.add("c", { parent: "b" });
    dir.add("solo", { role: "reviewer" });
    stored = [];
    mailbox = new Mailbox({ store: ts.store, directory: dir, now: clock.now, onStored: (rows) => stored.push(rows) });
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  async function expectRejected(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error, "the send should have been rejected").not.toBeNull();
    expect(isTroupeError(error), String(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    if (message) expect((error as Error).message).toMatch(message);
    expect(ts.store.listMail(), "nothing may be stored").toEqual([]);
    expect(stored).toEqual([]);
  }

  it("sends to a builder by name, durably, and returns the stored row", async () => {
    const [row, ...rest] = await mailbox.send({ to: "a", body: "hello", subject: "hi", type: "question", priority: "high", payload: { n: 1 } }, operator);
    expect(rest).toEqual([]);
    expect(row).toMatchObject({
      from: "operator",
      fromId: null,
      to: "a",
      toId: dir.byName("a")!.id,
      requestedTo: null,
      type: "question",
      subject: "hi",
      body: "hello",
      priority: "high",
      payload: { n: 1 },
      createdAt: clock.t,
      deliveredAt: null,
      readAt: null,
    });
    expect(row!.threadId).toBe(row!.id);
    expect(ts.store.getMail(row!.id)).toEqual(row);
    expect(stored).toEqual([[row]]);
  });

  it("defaults type to status and priority to normal; payload absent is null", async () => {
    const [row] = await mailbox.send({ to: "a", body: "x" }, operator);
    expect(row).toMatchObject({ type: "status", priority: "normal", payload: null, subject: null });
  });

  it("a builder sends as itself (from = its name and incarnation id)", async () => {
    const [row] = await mailbox.send({ to: "solo", body: "hey" }, agent("a"));
    expect(row).toMatchObject({ from: "a", fromId: dir.byName("a")!.id, to: "solo" });
  });

  it("operator: the person, never a builder", async () => {
    const [row] = await mailbox.send({ to: "operator", body: "done?" }, agent("c"));
    expect(row).toMatchObject({ from: "c", to: "operator", toId: null, requestedTo: null });
  });

  it("parent: the sender's parent", async () => {
    const [row] = await mailbox.send({ to: "parent", body: "q" }, agent("c"));
    expect(row).toMatchObject({ to: "b", toId: dir.byName("b")!.id, requestedTo: "parent", payload: null });
  });

  it("parent of a top-level builder is the operator (not a reroute)", async () => {
    const [row] = await mailbox.send({ to: "parent", body: "q", payload: { k: 1 } }, agent("lead"));
    expect(row).toMatchObject({ to: "operator", toId: null, requestedTo: "parent", payload: { k: 1 } });
  });

  it("parent destroyed: rerouted to the nearest live ancestor, and the message says so", async () => {
    dir.setState("b", "destroyed");
    const [row] = await mailbox.send({ to: "parent", body: "q", payload: { k: 1 } }, agent("c"));
    expect(row).toMatchObject({ to: "lead", toId: dir.byName("lead")!.id, requestedTo: "parent" });
    expect(row!.payload).toEqual({ k: 1, rerouted: { requested: "parent", intended: "b", intendedId: dir.byName("b")!.id, reason: "destroyed", to: "lead" } });
  });

  it("parent and every ancestor gone: rerouted to the operator", async () => {
    dir.setState("b", "destroying");
    dir.setState("lead", "destroyed");
    const [row] = await mailbox.send({ to: "parent", body: "q", payload: "text" }, agent("c"));
    expect(row).toMatchObject({ to: "operator", toId: null, requestedTo: "parent" });
    expect(row!.payload).toEqual({ value: "text", rerouted: { requested: "parent", intended: "b", intendedId: dir.byName("b")!.id, reason: "destroying", to: "operator" } });
  });

  it("parent missing from the directory altogether: operator, reason gone", async () => {
    const orphan = dir.add("orphan", { parentId: "no-such-id" });
    const [row] = await mailbox.send({ to: "parent", body: "q" }, { kind: "agent", id: orphan.id });
    expect(row).toMatchObject({ to: "operator", requestedTo: "parent" });
    expect(row!.payload).toEqual({ rerouted: { requested: "parent", intended: null, intendedId: "no-such-id", reason: "gone", to: "operator" } });
  });

  it("parent from the operator is an error", async () => {
    await expectRejected(mailbox.send({ to: "parent", body: "q" }, operator), "INVALID_ARGUMENT", /operator has no parent/);
  });

  it("the operator sending as a builder routes parent relative to that builder", async () => {
    const [row] = await mailbox.send({ to: "parent", body: "q", from: "c" }, operator);
    expect(row).toMatchObject({ from: "c", fromId: dir.byName("c")!.id, to: "b" });
  });

  it("@children: the sender's live children, one message each, one shared thread", async () => {
    dir.add("gone", { parent: "lead", state: "destroyed" });
    const rows = await mailbox.send({ to: "@children", body: "go", type: "dispatch" }, agent("lead"));
    expect(rows.map((r) => r.to).sort()).toEqual(["a", "b"]);
    expect(new Set(rows.map((r) => r.threadId)).size).toBe(1);
    expect(new Set(rows.map((r) => r.id)).size).toBe(2);
    expect(rows[0]!.threadId).not.toBe(rows[0]!.id);
    for (const r of rows) expect(r).toMatchObject({ from: "lead", requestedTo: "@children", type: "dispatch", body: "go" });
    // one send → one onStored call with every row
    expect(stored).toEqual([rows]);
    expect(ts.store.listMail().length).toBe(2);
  });

  it("@children from the operator: the top-level builders", async () => {
    const rows = await mailbox.send({ to: "@children", body: "status?" }, operator);
    expect(rows.map((r) => r.to).sort()).toEqual(["lead", "solo"]);
  });

  it("@children with no live children is an error, nothing stored", async () => {
    await expectRejected(mailbox.send({ to: "@children", body: "x" }, agent("a")), "UNKNOWN_RECIPIENT", /no live children/);
  });

  it("@all: every live builder except the sender", async () => {
    dir.setState("solo", "destroyed");
    dir.add("z", { state: "zombie" });
    const rows = await mailbox.send({ to: "@all", body: "standup" }, agent("a"));
    expect(rows.map((r) => r.to).sort()).toEqual(["b", "c", "lead", "z"]);
    expect(new Set(rows.map((r) => r.threadId)).size).toBe(1);
    for (const r of rows) expect(r.requestedTo).toBe("@all");
  });

  it("@all from the operator reaches every live builder, in ONE store write", async () => {
    const write = vi.spyOn(ts.store, "write");
    const rows = await mailbox.send({ to: "@all", body: "hi" }, operator);
    expect(write).toHaveBeenCalledTimes(1);
    write.mockRestore();
    expect(stored.length).toBe(1);
    expect(rows.map((r) => r.to).sort()).toEqual(["a", "b", "c", "lead", "solo"]);
  });

  it("@role:<role>: live builders with that role except the sender", async () => {
    const rows = await mailbox.send({ to: "@role:reviewer", body: "review", threadId: "thread-1" }, agent("a"));
    expect(rows.map((r) => r.to).sort()).toEqual(["b", "solo"]);
    for (const r of rows) expect(r.threadId).toBe("thread-1");
  });

  it("a given threadId is kept on a single send", async () => {
    const [row] = await mailbox.send({ to: "b", body: "x", threadId: "T_1-a" }, operator);
    expect(row!.threadId).toBe("T_1-a");
  });

  it("a group that only holds the sender is an error", async () => {
    await expectRejected(mailbox.send({ to: "@role:lead", body: "x" }, agent("lead")), "UNKNOWN_RECIPIENT", /left out/);
  });

  it("@role with nobody in it is an error", async () => {
    await expectRejected(mailbox.send({ to: "@role:nobody", body: "x" }, operator), "UNKNOWN_RECIPIENT");
  });

  it("an unknown builder is an error that says how to see builders", async () => {
    await expectRejected(mailbox.send({ to: "nobody", body: "x" }, operator), "UNKNOWN_RECIPIENT", /troupe status/);
  });

  it("a destroyed builder is an error, not a fallback", async () => {
    dir.setState("solo", "destroyed");
    await expectRejected(mailbox.send({ to: "solo", body: "x" }, agent("a")), "DESTROYED", /was destroyed/);
  });

  it("a builder being torn down is an error too", async () => {
    dir.setState("solo", "destroying");
    await expectRejected(mailbox.send({ to: "solo", body: "x" }, operator), "DESTROYED", /being destroyed/);
  });

  it("a new incarnation of a destroyed name receives the mail", async () => {
    dir.setState("solo", "destroyed");
    const fresh = dir.add("solo");
    const [row] = await mailbox.send({ to: "solo", body: "x" }, operator);
    expect(row!.toId).toBe(fresh.id);
  });

  it.each([
    ["", "INVALID_ARGUMENT"],
    ["Lead", "INVALID_ARGUMENT"],
    ["a b", "INVALID_ARGUMENT"],
    ["../etc", "INVALID_ARGUMENT"],
    ["@role:", "INVALID_ARGUMENT"],
    ["@role:Bad Role", "INVALID_ARGUMENT"],
    ["@everyone", "UNKNOWN_RECIPIENT"],
    ["@", "UNKNOWN_RECIPIENT"],
  ])("malformed address %j is rejected (%s), nothing stored", async (to, code) => {
    await expectRejected(mailbox.send({ to, body: "x" }, operator), code);
  });

  it("a non-string address is rejected", async () => {
    await expectRejected(mailbox.send({ to: 42 as unknown as string, body: "x" }, operator), "INVALID_ARGUMENT");
  });

  describe("sender identity", () => {
    it("a builder may not set from to someone else", async () => {
      await expectRejected(mailbox.send({ to: "lead", body: "x", from: "b" }, agent("a")), "UNAUTHORIZED", /only the operator may set from/i);
      await expectRejected(mailbox.send({ to: "lead", body: "x", from: "operator" }, agent("a")), "UNAUTHORIZED");
    });

    it("a builder setting from to its own name is fine", async () => {
      const [row] = await mailbox.send({ to: "lead", body: "x", from: "a" }, agent("a"));
      expect(row!.from).toBe("a");
    });

    it("the operator may set from to a builder name (even a dead one) or operator", async () => {
      dir.setState("c", "zombie");
      const [row] = await mailbox.send({ to: "b", body: "died", from: "c" }, operator);
      expect(row).toMatchObject({ from: "c", fromId: dir.byName("c")!.id });
      const [row2] = await mailbox.send({ to: "b", body: "x", from: "operator" }, operator);
      expect(row2).toMatchObject({ from: "operator", fromId: null });
    });

    it("the operator may not send from a name nobody has", async () => {
      await expectRejected(mailbox.send({ to: "b", body: "x", from: "ghost" }, operator), "INVALID_ARGUMENT", /no builder/);
    });

    it("an agent id the directory does not know is unauthorized", async () => {
      await expectRejected(mailbox.send({ to: "b", body: "x" }, { kind: "agent", id: "forged" }), "UNAUTHORIZED");
    });

    it("a destroyed builder cannot send", async () => {
      dir.setState("a", "destroyed");
      await expectRejected(mailbox.send({ to: "b", body: "x" }, { kind: "agent", id: dir.byName("a")!.id }), "DESTROYED");
    });
  });
});
