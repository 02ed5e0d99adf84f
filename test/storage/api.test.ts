import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isTroupeError } from "../../src/shared/errors.js";
import { SCHEMA_VERSION } from "../../src/storage/index.js";
import { actor, mail, open, tempDir } from "./helpers.js";

describe("typed API", () => {
  it("round-trips every actor field, in memory and after reopening", async () => {
    const dir = tempDir();
    const store = await open(dir);
    const a = actor("alice", { pty: false, ptySocket: "/run/a.sock", hostPid: 9, hostStartTime: 10, destroyedAt: null });
    const b = actor("bob", { pty: null, snapshot: null, intent: null, restartTimes: [], spec: { agent: "shell", cmd: [], restart: "temporary", pty: "off", env: {}, policy: {} }, role: null, substate: null });
    await store.write((tx) => {
      tx.insertActor(a);
      tx.insertActor(b);
    });
    expect(store.getActor(a.id)).toEqual(a);
    expect(store.getActor(b.id)).toEqual(b);
    await store.close();
    const again = await open(dir);
    expect(again.getActor(a.id)).toEqual(a);
    expect(again.getActor(b.id)).toEqual(b);
    expect(again.getActor("nope")).toBeUndefined();
  });

  it("patches actors and refuses unknown ids and fields", async () => {
    const store = await open(tempDir());
    const a = actor("alice");
    await store.write((tx) => tx.insertActor(a));
    await store.write((tx) => tx.updateActor(a.id, { state: "zombie", substate: null, intent: null, restartTimes: [5], pty: false, updatedAt: 99, pid: undefined }));
    expect(store.getActor(a.id)).toEqual({ ...a, state: "zombie", substate: null, intent: null, restartTimes: [5], pty: false, updatedAt: 99 });
    expect(() => store.write((tx) => tx.updateActor("missing", { state: "zombie" }))).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
    expect(() => store.write((tx) => tx.updateActor(a.id, { bogus: 1 } as never))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => store.write((tx) => tx.updateActor(a.id, { restarts: "x" } as never))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("finds the newest incarnation by name; tombstones only when asked", async () => {
    const store = await open(tempDir());
    const first = actor("alice", { createdAt: 1 });
    await store.write((tx) => tx.insertActor(first));
    await store.write((tx) => tx.updateActor(first.id, { state: "destroyed", destroyedAt: 5 }));
    expect(store.findActorByName("alice")).toBeUndefined();
    expect(store.findActorByName("alice", { includeDestroyed: true })?.id).toBe(first.id);
    const second = actor("alice", { createdAt: 10 });
    await store.write((tx) => tx.insertActor(second));
    expect(store.findActorByName("alice")?.id).toBe(second.id);
    expect(store.findActorByName("alice", { includeDestroyed: true })?.id).toBe(second.id);
    expect(store.listActors().map((r) => r.id)).toEqual([second.id]);
    expect(store.listActors({ includeDestroyed: true }).map((r) => r.id)).toEqual([first.id, second.id]);
    // one live incarnation per name
    expect(() => store.write((tx) => tx.insertActor(actor("alice", { createdAt: 20 })))).toThrow(/UNIQUE/);
    await store.write((tx) => tx.deleteActor(first.id));
    expect(store.listActors({ includeDestroyed: true }).map((r) => r.id)).toEqual([second.id]);
  });

  it("keeps history in order per actor", async () => {
    const store = await open(tempDir());
    await store.write((tx) => {
      tx.appendHistory({ actorId: "x", name: "alice", from: "booting", to: "working.running", event: "started", at: 1 });
      tx.appendHistory({ actorId: "y", name: "bob", from: "booting", to: "working", event: "started", at: 2 });
      tx.appendHistory({ actorId: "x", name: "alice", from: "working.running", to: "completed", event: "worker_done", at: 3 });
    });
    const h = store.history("x");
    expect(h.map((r) => [r.from, r.to, r.event, r.at])).toEqual([
      ["booting", "working.running", "started", 1],
      ["working.running", "completed", "worker_done", 3],
    ]);
    expect(h[0]!.seq).toBeLessThan(h[1]!.seq);
    expect(store.history("nobody")).toEqual([]);
  });

  it("queries mail by recipient, thread, state and limit", async () => {
    const store = await open(tempDir());
    await store.write((tx) => {
      tx.insertMail(mail("m1", { createdAt: 1 }));
      tx.insertMail(mail("m2", { createdAt: 2, toId: null, to: "operator", threadId: "t" }));
      tx.insertMail(mail("m3", { createdAt: 3, threadId: "t", fromId: "id-bob", from: "bob", payload: null, subject: null }));
      tx.insertMail(mail("m4", { createdAt: 4, priority: "urgent", requestedTo: "@all" }));
    });
    await store.write((tx) => {
      tx.updateMail("m1", { deliveredAt: 5, readAt: 6 });
      tx.updateMail("m3", { deliveredAt: 7 });
    });
    const ids = (q: Parameters<typeof store.listMail>[0]): string[] => store.listMail(q).map((m) => m.id);
    expect(ids({})).toEqual(["m1", "m2", "m3", "m4"]);
    expect(ids({ toId: "id-alice" })).toEqual(["m1", "m3", "m4"]);
    expect(ids({ toId: null })).toEqual(["m2"]);
    expect(ids({ to: "operator" })).toEqual(["m2"]);
    expect(ids({ fromId: "id-bob" })).toEqual(["m3"]);
    expect(ids({ threadId: "t" })).toEqual(["m2", "m3"]);
    expect(ids({ toId: "id-alice", unread: true })).toEqual(["m3", "m4"]);
    expect(ids({ unread: false })).toEqual(["m1"]);
    expect(ids({ undelivered: true })).toEqual(["m2", "m4"]);
    expect(ids({ toId: "id-alice", unread: true, limit: 1 })).toEqual(["m3"]);
    expect(store.getMail("m3")).toEqual(mail("m3", { createdAt: 3, threadId: "t", fromId: "id-bob", from: "bob", payload: null, subject: null, deliveredAt: 7 }));
    expect(store.getMail("m4")?.priority).toBe("urgent");
    expect(() => store.write((tx) => tx.updateMail("m1", { body: "x" } as never))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => store.write((tx) => tx.updateMail("zz", { readAt: 1 }))).toThrow(expect.objectContaining({ code: "NOT_FOUND" }));
  });

  it("stores meta and keeps the store's own keys to itself", async () => {
    const store = await open(tempDir());
    await store.write((tx) => tx.setMeta("k", "v1"));
    await store.write((tx) => tx.setMeta("k", "v2"));
    expect(store.getMeta("k")).toBe("v2");
    expect(store.getMeta("missing")).toBeUndefined();
    expect(store.getMeta("schema_version")).toBe(String(SCHEMA_VERSION));
    expect(() => store.write((tx) => tx.setMeta("snapshot_seq", "1"))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("migrates a new store at open and records it", async () => {
    const dir = tempDir();
    const store = await open(dir);
    expect(store.recovery).toMatchObject({ migratedFrom: 0, snapshotSeq: 0, replayed: 0, droppedBytes: 0, dropReason: null, staleLockTakenOver: null });
    await store.close();
    const again = await open(dir);
    expect(again.recovery.migratedFrom).toBeNull();
    expect(again.getMeta("schema_version")).toBe(String(SCHEMA_VERSION));
  });
});

describe("writes", () => {
  it("a failing write changes nothing, in memory or on disk", async () => {
    const dir = tempDir();
    const store = await open(dir, { snapshotOnClose: false });
    const a = actor("alice");
    await store.write((tx) => tx.insertActor(a));
    const before = store.stats();
    const journalBefore = readFileSync(join(dir, "journal"));
    expect(() =>
      store.write((tx) => {
        tx.updateActor(a.id, { state: "zombie" });
        tx.insertMail(mail("m1"));
        tx.insertActor({ ...a, name: "other" }); // duplicate id
      }),
    ).toThrow(/UNIQUE|constraint/i);
    expect(() =>
      store.write(() => {
        throw new Error("caller bug");
      }),
    ).toThrow("caller bug");
    expect(store.getActor(a.id)?.state).toBe("working");
    expect(store.getMail("m1")).toBeUndefined();
    expect(store.stats().lastSeq).toBe(before.lastSeq);
    expect(readFileSync(join(dir, "journal")).equals(journalBefore)).toBe(true);
    // and the store goes on working
    await store.write((tx) => tx.insertMail(mail("m2")));
    await store.close();
    const again = await open(dir);
    expect(again.getActor(a.id)?.state).toBe("working");
    expect(again.getMail("m1")).toBeUndefined();
    expect(again.getMail("m2")).toBeDefined();
  });

  it("refuses async callbacks, nested writes and a tx used after its callback", async () => {
    const store = await open(tempDir());
    expect(() => store.write((async () => undefined) as never)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => store.write(() => void store.write(() => undefined))).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    let leaked: Parameters<Parameters<typeof store.write>[0]>[0] | undefined;
    await store.write((tx) => {
      leaked = tx;
    });
    expect(() => leaked!.setMeta("k", "v")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(store.getMeta("k")).toBeUndefined();
  });

  it("group commit: writes of one tick share one fsync, writes during a flush share the next", async () => {
    const store = await open(tempDir());
    await store.write((tx) => tx.setMeta("warm", "1"));
    const start = store.stats().fsyncs!;
    const first = Array.from({ length: 100 }, (_, i) => store.write((tx) => tx.setMeta(`k${i}`, String(i))));
    await Promise.all(first);
    expect(store.stats().fsyncs! - start).toBe(1);

    // 3 waves: each issued while the previous flush is in flight
    const mid = store.stats().fsyncs!;
    const order: number[] = [];
    const waves: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) waves.push(store.write((tx) => tx.setMeta(`w${i}`, "1")).then(() => void order.push(i)));
    await new Promise((resolve) => setImmediate(resolve)); // the first flush has started
    for (let i = 50; i < 100; i++) waves.push(store.write((tx) => tx.setMeta(`w${i}`, "1")).then(() => void order.push(i)));
    await Promise.all(waves);
    expect(store.stats().fsyncs! - mid).toBeLessThanOrEqual(2);
    expect(order).toEqual([...order].sort((x, y) => x - y)); // acknowledged in order
    expect(store.stats().durableSeq).toBe(store.stats().lastSeq);
  });

  it("an empty write resolves once earlier writes are durable", async () => {
    const store = await open(tempDir());
    const w = store.write((tx) => tx.setMeta("k", "v"));
    const seq = store.stats().lastSeq;
    await store.write(() => undefined);
    expect(store.stats().durableSeq).toBeGreaterThanOrEqual(seq);
    await w;
    expect(store.stats().lastSeq).toBe(seq);
  });
});

describe("life", () => {
  it("close releases the lock; double close is a no-op; use after close is STORE_CLOSED", async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.write((tx) => tx.setMeta("k", "v"));
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(() => readFileSync(join(dir, "lock"))).toThrow();
    for (const use of [() => store.getMeta("k"), () => store.listActors(), () => store.write(() => undefined), () => store.snapshot(), () => store.stats()]) {
      let caught: unknown;
      try {
        await use();
      } catch (error) {
        caught = error;
      }
      expect(isTroupeError(caught, "STORE_CLOSED")).toBe(true);
    }
    const again = await open(dir);
    expect(again.getMeta("k")).toBe("v");
  });
});

describe("journal IO failure", () => {
  it("fails the pending writes and every later one with STORE_IO; reopening recovers what was acknowledged", async () => {
    const dir = tempDir();
    const store = await open(dir, { snapshotOnClose: false });
    await store.write((tx) => tx.setMeta("acked", "1"));
    // Fault injection: pull the journal's file descriptor from under the store.
    await (store as unknown as { journal: { fh: { close(): Promise<void> } } }).journal.fh.close();
    const pending = store.write((tx) => tx.setMeta("lost", "1"));
    await expect(pending).rejects.toMatchObject({ code: "STORE_IO" });
    expect(() => store.write((tx) => tx.setMeta("later", "1"))).toThrow(expect.objectContaining({ code: "STORE_IO", message: expect.stringMatching(/open the workspace again/) }));
    await store.close();
    const again = await open(dir);
    expect(again.getMeta("acked")).toBe("1");
    expect(again.getMeta("later")).toBeUndefined();
  });
});
