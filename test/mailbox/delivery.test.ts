import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Mailbox, PtyDelivery, formatForTerminal, type MailRow, type Sender } from "../../src/mailbox/index.js";
import { createLogger } from "../../src/supervisor/log.js";
import { FakeClock, FakeDirectory, FakeTerminal, openTestStore, settle, waitFor, type TestStore } from "./helpers.js";

const operator: Sender = { kind: "operator" };
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

describe("PtyDelivery", () => {
  let ts: TestStore;
  let dir: FakeDirectory;
  let clock: FakeClock;
  let terminal: FakeTerminal;
  let mailbox: Mailbox;
  let delivery: PtyDelivery;
  let worker: string;
  const IDLE = 1_000;

  function makeDelivery(): PtyDelivery {
    return new PtyDelivery({ store: ts.store, directory: dir, idleMs: IDLE, now: clock.now, terminal });
  }

  beforeEach(async () => {
    ts = await openTestStore();
    dir = new FakeDirectory();
    dir.add("lead");
    worker = dir.add("worker", { parent: "lead" }).id;
    clock = new FakeClock();
    terminal = new FakeTerminal();
    delivery = makeDelivery();
    // As the supervisor will: new mail → notify the recipient.
    mailbox = new Mailbox({
      store: ts.store,
      directory: dir,
      now: clock.now,
      onStored: (rows) => {
        for (const row of rows) if (row.toId) delivery.notify(row.toId);
      },
    });
  });

  afterEach(async () => {
    await delivery.stop();
    await ts.cleanup();
  });

  const delivered = (id: string): boolean => ts.store.getMail(id)!.deliveredAt !== null;

  it("does not type while the terminal is busy, types once after idleMs of quiet", async () => {
    terminal.output.set(worker, clock.t);
    delivery.start();
    const [m] = await mailbox.send({ to: "worker", body: "hello", type: "question", subject: "q1" }, { kind: "agent", id: dir.byName("lead")!.id });
    expect(delivered(m!.id)).toBe(false);

    clock.advance(IDLE - 1);
    delivery.notify(worker);
    expect(delivered(m!.id)).toBe(false);

    // Output keeps coming: the quiet period starts over.
    terminal.output.set(worker, clock.t);
    clock.advance(IDLE - 1);
    delivery.notify(worker);
    expect(delivered(m!.id)).toBe(false);
    await settle();
    expect(terminal.writes).toEqual([]);

    clock.advance(1);
    delivery.notify(worker);
    await waitFor(() => terminal.writes.length === 1, "the message to be typed");
    expect(terminal.writes[0]).toEqual({ actorId: worker, data: `${PASTE_START}[troupe mail from lead (question) #${m!.id}] q1: hello${PASTE_END}\r` });
    expect(ts.store.getMail(m!.id)!.deliveredAt).toBe(clock.t);
    // It stays in the inbox, unread.
    expect(mailbox.list({ name: "worker", unread: true }).map((x) => x.id)).toEqual([m!.id]);

    // Typed once: more notifications change nothing.
    clock.advance(10 * IDLE);
    delivery.notify(worker);
    delivery.notify();
    await settle();
    expect(terminal.writes.length).toBe(1);
  });

  it("waits with a timer to the computed moment and re-checks (real clock, short idleMs)", async () => {
    const shortIdle = 40;
    const realDelivery = new PtyDelivery({ store: ts.store, directory: dir, idleMs: shortIdle, terminal, logger: createLogger({ level: "silent" }) });
    try {
      realDelivery.start();
      const [m] = await mailbox.send({ to: "worker", body: "tick" }, operator);
      terminal.output.set(worker, Date.now());
      realDelivery.notify(worker);
      expect(delivered(m!.id)).toBe(false);
      await waitFor(() => terminal.writes.length === 1, "the timer-driven delivery");
      expect(Date.now() - terminal.output.get(worker)!).toBeGreaterThanOrEqual(shortIdle - 1);
      expect(terminal.writes[0]!.data).toContain("tick");
    } finally {
      await realDelivery.stop();
    }
  });

  it("keeps newlines of the body inside one bracketed paste, then Enter; strips escapes", async () => {
    terminal.output.set(worker, clock.t - IDLE);
    delivery.start();
    const [m] = await mailbox.send({ to: "worker", body: "line 1\nline 2\r\nline 3\x1b[201~rm -rf /\r\x07", priority: "high" }, operator);
    await waitFor(() => terminal.writes.length === 1, "delivery");
    const data = terminal.writes[0]!.data;
    expect(data).toBe(`${PASTE_START}[troupe mail from operator (status, high) #${m!.id}] line 1\nline 2\nline 3[201~rm -rf /\n${PASTE_END}\r`);
    // Exactly one paste start and end: the body cannot close the paste early.
    expect(data.split(PASTE_START).length - 1).toBe(1);
    expect(data.split(PASTE_END).length - 1).toBe(1);
    expect(data.endsWith(`${PASTE_END}\r`)).toBe(true);
    // The stored message is untouched.
    expect(ts.store.getMail(m!.id)!.body).toBe("line 1\nline 2\r\nline 3\x1b[201~rm -rf /\r\x07");
  });

  it("one message at a time: urgent, then high, then the rest oldest first, each after the terminal is quiet again", async () => {
    terminal.output.set(worker, clock.t);
    delivery.start();
    const send = async (body: string, priority: MailRow["priority"]): Promise<void> => {
      await mailbox.send({ to: "worker", body, priority }, operator);
      clock.advance(1);
    };
    await send("normal-1", "normal");
    await send("low-1", "low");
    await send("high-1", "high");
    await send("normal-2", "normal");
    await send("urgent-1", "urgent");
    await send("high-2", "high");
    expect(terminal.writes).toEqual([]);

    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      clock.advance(IDLE);
      delivery.notify(worker);
      await waitFor(() => terminal.writes.length === i + 1, `message ${i + 1}`);
      // Not the next one before the terminal has been quiet for idleMs again (typing counts as activity).
      delivery.notify(worker);
      await settle();
      expect(terminal.writes.length).toBe(i + 1);
      order.push(/\] (\S+)/.exec(terminal.writes[i]!.data)![1]!.replace(PASTE_END, ""));
    }
    expect(order.map((s) => s.replace(/\x1b.*$/, ""))).toEqual(["urgent-1", "high-1", "high-2", "normal-1", "normal-2", "low-1"]);
  });

  it("records deliveredAt durably BEFORE typing; a crash mid-write never types it twice", async () => {
    terminal.output.set(worker, clock.t - IDLE);
    let deliveredAtWhenWriting: number | null | undefined;
    terminal.beforeWrite = (_id, data) => {
      const id = /#(\S+)\]/.exec(data)![1]!;
      deliveredAtWhenWriting = ts.store.getMail(id)!.deliveredAt;
      throw new Error("simulated crash while typing");
    };
    delivery.start();
    const [m] = await mailbox.send({ to: "worker", body: "exactly once" }, operator);
    await waitFor(() => deliveredAtWhenWriting !== undefined, "the write attempt");
    expect(deliveredAtWhenWriting).toBe(clock.t);
    await delivery.stop();

    // "Restart": a new store handle on the same directory and a new delivery loop.
    const store = await ts.reopen();
    expect(store.getMail(m!.id)!.deliveredAt).toBe(clock.t);
    terminal.beforeWrite = null;
    delivery = new PtyDelivery({ store, directory: dir, idleMs: IDLE, now: clock.now, terminal });
    clock.advance(IDLE * 10);
    delivery.start();
    delivery.notify(worker);
    await settle(20);
    expect(terminal.writes).toEqual([]);
    // Still in the inbox.
    expect(store.listMail({ toId: worker }).map((x) => x.id)).toEqual([m!.id]);
  });

  it("start() after a restart delivers mail stored while nobody was typing", async () => {
    const [m1] = await mailbox.send({ to: "worker", body: "queued 1" }, operator);
    const [m2] = await mailbox.send({ to: "lead", body: "queued 2" }, operator);
    expect(terminal.writes).toEqual([]); // not started: nothing typed
    const store = await ts.reopen();
    delivery = new PtyDelivery({ store, directory: dir, idleMs: IDLE, now: clock.now, terminal });
    terminal.output.set(worker, clock.t - IDLE);
    terminal.output.set(dir.byName("lead")!.id, clock.t - IDLE);
    delivery.start();
    await waitFor(() => terminal.writes.length === 2, "both deliveries");
    expect(terminal.writesTo(worker)[0]).toContain(m1!.id);
    expect(terminal.writesTo(dir.byName("lead")!.id)[0]).toContain(m2!.id);
  });

  it("never types for inbox-only builders, the operator, or builders without a live terminal or not live", async () => {
    const quiet = dir.add("quiet", { deliver: "inbox" });
    const noTerm = dir.add("noterm");
    const dying = dir.add("dying");
    for (const a of [quiet, noTerm, dying]) terminal.output.set(a.id, clock.t - IDLE);
    terminal.output.delete(noTerm.id);
    const [q] = await mailbox.send({ to: "quiet", body: "inbox only" }, operator);
    const [n] = await mailbox.send({ to: "noterm", body: "later" }, operator);
    const [d] = await mailbox.send({ to: "dying", body: "gone" }, operator);
    const [o] = await mailbox.send({ to: "operator", body: "for the person" }, { kind: "agent", id: worker });
    dir.setState("dying", "destroying");
    delivery.start();
    clock.advance(IDLE * 5);
    delivery.notify();
    for (const id of [quiet.id, noTerm.id, dying.id]) delivery.notify(id);
    await settle(20);
    expect(terminal.writes).toEqual([]);
    for (const m of [q, n, d, o]) expect(delivered(m!.id)).toBe(false);
    expect(mailbox.list({ name: "quiet" }).map((x) => x.body)).toEqual(["inbox only"]);

    // The terminal comes up: the supervisor notifies, and it is typed.
    terminal.output.set(noTerm.id, clock.t - IDLE);
    delivery.notify(noTerm.id);
    await waitFor(() => terminal.writes.length === 1, "delivery once the terminal is up");
    expect(terminal.writes[0]!.actorId).toBe(noTerm.id);
  });

  it("a failing write leaves the message delivered (at most once) and in the inbox; later mail still flows", async () => {
    terminal.output.set(worker, clock.t - IDLE);
    let fail = true;
    let attempts = 0;
    terminal.beforeWrite = () => {
      attempts++;
      if (fail) throw new Error("terminal gone");
    };
    delivery.start();
    const [m1] = await mailbox.send({ to: "worker", body: "first" }, operator);
    await waitFor(() => attempts === 1, "the failed attempt to type the first");
    expect(delivered(m1!.id)).toBe(true);
    fail = false;
    clock.advance(IDLE);
    const [m2] = await mailbox.send({ to: "worker", body: "second" }, operator);
    await waitFor(() => terminal.writes.length === 1, "second typed");
    expect(terminal.writes[0]!.data).toContain(m2!.id);
    expect(mailbox.list({ name: "worker" }).map((x) => x.body)).toEqual(["first", "second"]);
  });

  it("stop() cancels pending timers: nothing is typed afterwards", async () => {
    const realDelivery = new PtyDelivery({ store: ts.store, directory: dir, idleMs: 30, terminal });
    realDelivery.start();
    const [m] = await mailbox.send({ to: "worker", body: "never" }, operator);
    terminal.output.set(worker, Date.now());
    realDelivery.notify(worker);
    expect(delivered(m!.id)).toBe(false);
    await realDelivery.stop();
    realDelivery.notify(worker);
    // Wait past the moment the timer would have fired, event-driven: a second loop delivers other mail.
    const other = dir.add("other");
    const witnessDir = new FakeDirectory();
    witnessDir.actors.push(other);
    const witness = new PtyDelivery({ store: ts.store, directory: witnessDir, idleMs: 60, terminal });
    await mailbox.send({ to: "other", body: "witness" }, operator);
    terminal.output.set(other.id, Date.now());
    witness.start();
    await waitFor(() => terminal.writes.length >= 1, "the witness delivery");
    await witness.stop();
    expect(terminal.writes.map((w) => w.actorId)).toEqual([other.id]);
    expect(delivered(m!.id)).toBe(false);
  });

  it("formatForTerminal names the sender, type, id and subject on one header line", () => {
    const row: MailRow = {
      id: "m1", from: "lead", fromId: "x", to: "w", toId: "y", requestedTo: null, type: "dispatch", subject: "task\nsplit",
      body: "do it", priority: "urgent", threadId: "t", payload: null, createdAt: 0, deliveredAt: null, readAt: null,
    };
    expect(formatForTerminal(row)).toBe(`${PASTE_START}[troupe mail from lead (dispatch, urgent) #m1] task split: do it${PASTE_END}\r`);
  });
});
