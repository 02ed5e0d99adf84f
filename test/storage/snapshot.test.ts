import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scanJournal } from "../../src/storage/frame.js";
import { mail, open, tempDir, until } from "./helpers.js";

describe("snapshots", () => {
  for (const thread of ["main", "worker"] as const) {
    it(`lose no write that arrives while they are taken (${thread} thread)`, async () => {
      const dir = tempDir();
      const options = { workerSnapshotBytes: thread === "worker" ? 0 : Number.POSITIVE_INFINITY, snapshotOnClose: false };
      const store = await open(dir, options);
      let writing = true;
      let next = 0;
      const acked: number[] = [];
      const writers = Array.from({ length: 6 }, async () => {
        while (writing) {
          const k = next++;
          await store.write((tx) => {
            tx.insertMail(mail(`m${k}`, { body: "b".repeat(300), createdAt: k }));
            tx.setMeta(`k${k}`, String(k));
          });
          acked.push(k);
        }
      });
      const reports = [];
      for (let i = 0; i < 4; i++) {
        await until(() => acked.length > (i + 1) * 100, "writes to flow");
        reports.push(await store.snapshot());
      }
      writing = false;
      await Promise.all(writers);
      for (const r of reports) expect(r.thread).toBe(thread);
      expect(reports.map((r) => r.seq)).toEqual([...reports.map((r) => r.seq)].sort((a, b) => a - b));
      const stats = store.stats();
      expect(stats.snapshotSeq).toBe(reports.at(-1)!.seq);
      // the journal was cut down to what the last snapshot does not hold
      const journal = scanJournal(readFileSync(join(dir, "journal")));
      expect(journal.frames[0]?.seq ?? stats.lastSeq + 1).toBeGreaterThan(reports.at(-1)!.seq);
      expect(journal.frames.at(-1)?.seq ?? reports.at(-1)!.seq).toBe(stats.lastSeq);
      await store.close(); // no snapshot at close: the next open needs the journal tail

      const again = await open(dir, { snapshotOnClose: false });
      expect(again.recovery.snapshotSeq).toBe(reports.at(-1)!.seq);
      expect(again.recovery.replayed).toBe(stats.lastSeq - reports.at(-1)!.seq);
      for (const k of acked) expect(again.getMeta(`k${k}`)).toBe(String(k));
      expect(again.listMail()).toHaveLength(acked.length);
    });
  }

  it("are taken when the journal outgrows its limit, and on close", async () => {
    const dir = tempDir();
    const store = await open(dir, { snapshotJournalBytes: 16 * 1024 });
    for (let i = 0; i < 60; i++) await store.write((tx) => tx.insertMail(mail(`m${i}`, { body: "z".repeat(1000) })));
    await until(() => (store.stats().snapshots ?? 0) > 0, "a snapshot triggered by journal size");
    await until(() => store.stats().journalBytes < 16 * 1024 + 2000, "the journal to be cut");
    await store.write((tx) => tx.setMeta("last", "1"));
    await store.close();
    const again = await open(dir);
    expect(again.recovery.replayed).toBe(0); // everything was in the snapshot taken at close
    expect(again.listMail()).toHaveLength(60);
    expect(again.getMeta("last")).toBe("1");
  });

  it("are taken by time when the journal is not empty", async () => {
    const dir = tempDir();
    const store = await open(dir, { snapshotIntervalMs: 30 });
    await store.write((tx) => tx.setMeta("k", "v"));
    await until(() => store.stats().snapshotSeq === store.stats().lastSeq, "a snapshot triggered by time");
    expect(store.stats().snapshots).toBeGreaterThan(0);
    expect(existsSync(join(dir, "troupe.sqlite"))).toBe(true);
  });

  it("leave no temp file behind, and a leftover one from a crash is removed at open", async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.write((tx) => tx.setMeta("k", "v"));
    await store.snapshot();
    await store.close();
    expect(existsSync(join(dir, ".troupe.sqlite.tmp"))).toBe(false);
    expect(existsSync(join(dir, ".journal.tmp"))).toBe(false);
    writeFileSync(join(dir, ".troupe.sqlite.tmp"), "half a snapshot");
    writeFileSync(join(dir, ".journal.tmp"), "half a journal");
    const again = await open(dir);
    expect(again.getMeta("k")).toBe("v");
    expect(existsSync(join(dir, ".troupe.sqlite.tmp"))).toBe(false);
    expect(existsSync(join(dir, ".journal.tmp"))).toBe(false);
  });
});
