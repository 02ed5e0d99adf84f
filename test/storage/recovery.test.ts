import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import initSqlJs from "sql.js";
import { describe, expect, it } from "vitest";
import { isTroupeError, type TroupeError } from "../../src/shared/errors.js";
import { encodeFrame, fileHeader, scanJournal } from "../../src/storage/frame.js";
import { SCHEMA_VERSION } from "../../src/storage/index.js";
import { mail, open, tempDir } from "./helpers.js";

/** A closed store whose journal holds `n` records (k0…k{n-1}), no snapshot. */
async function journalOnly(n: number, lastValue = "v"): Promise<string> {
  const dir = tempDir();
  const store = await open(dir, { snapshotOnClose: false });
  for (let i = 0; i < n; i++) await store.write((tx) => tx.setMeta(`k${i}`, i === n - 1 ? lastValue : `v${i}`));
  await store.close();
  return dir;
}

function frames(dir: string): ReturnType<typeof scanJournal> {
  return scanJournal(readFileSync(join(dir, "journal")));
}

async function openError(dir: string): Promise<TroupeError> {
  try {
    await open(dir);
  } catch (error) {
    if (isTroupeError(error)) return error;
    throw error;
  }
  throw new Error("open succeeded");
}

/** Content of every file of `dir` except the lock, to prove a refusal modified nothing. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (name === "lock") continue;
    out[name] = createHash("sha256").update(readFileSync(join(dir, name))).digest("hex");
  }
  return out;
}

describe("torn journal tail", () => {
  it("opens at every cut inside the last record, keeping all earlier records and reporting the cut", async () => {
    const source = await journalOnly(4, "last");
    const scan = frames(source);
    const last = scan.frames.at(-1)!;
    truncateSync(join(source, "journal"), scan.validBytes); // drop the preallocated zeros: small copies
    const original = readFileSync(join(source, "journal"));
    expect(last.end - last.offset).toBeGreaterThan(40);
    for (let cut = last.offset; cut < last.end; cut++) {
      const dir = tempDir();
      cpSync(source, dir, { recursive: true });
      truncateSync(join(dir, "journal"), cut);
      const store = await open(dir, { snapshotOnClose: false });
      for (let i = 0; i < 3; i++) expect(store.getMeta(`k${i}`)).toBe(`v${i}`);
      expect(store.getMeta("k3")).toBeUndefined();
      // Trailing zeros are indistinguishable from preallocated space: they are not counted as data.
      const tail = original.subarray(last.offset, cut);
      let torn = tail.length;
      while (torn > 0 && tail[torn - 1] === 0) torn--;
      expect(store.recovery).toMatchObject({ droppedBytes: torn, dropReason: torn === 0 ? null : "torn" });
      if (torn > 0) {
        expect(readFileSync(store.recovery.droppedSavedTo!).equals(tail.subarray(0, torn))).toBe(true);
      } else {
        expect(store.recovery.droppedSavedTo).toBeNull();
      }
      if (cut % 16 === 0 || cut === last.end - 1) {
        // the store goes on: the next record follows the last kept one
        await store.write((tx) => tx.setMeta("after", "1"));
        await store.close();
        const again = await open(dir, { snapshotOnClose: false });
        expect(again.recovery.droppedBytes).toBe(0);
        expect(again.getMeta("after")).toBe("1");
        expect(again.getMeta("k2")).toBe("v2");
        await again.close();
      } else {
        await store.close();
      }
      rmSync(dir, { recursive: true });
    }
  });

  it("treats a record cut short into preallocated zeros as torn, and plain zeros as free space", async () => {
    const source = await journalOnly(3);
    const last = frames(source).frames.at(-1)!;
    const bytes = readFileSync(join(source, "journal"));
    expect(bytes.length).toBeGreaterThan(last.end); // zeros preallocated after the records
    const torn = Buffer.from(bytes);
    torn.fill(0, last.offset + 30);
    const dir = tempDir();
    cpSync(source, dir, { recursive: true });
    writeFileSync(join(dir, "journal"), torn);
    const store = await open(dir);
    expect(store.recovery).toMatchObject({ dropReason: "torn", droppedBytes: 30 });
    expect(store.getMeta("k1")).toBe("v1");
    expect(store.getMeta("k2")).toBeUndefined();
    const clean = await open(source);
    expect(clean.recovery.droppedBytes).toBe(0);
    expect(clean.getMeta("k2")).toBe("v");
  });
});

describe("corrupt journal", () => {
  it("a flipped byte mid-journal: keeps the records before it, sets the rest aside, says so", async () => {
    const dir = await journalOnly(20);
    const scan = frames(dir);
    const victim = scan.frames[10]!;
    const path = join(dir, "journal");
    const bytes = readFileSync(path);
    const original = Buffer.from(bytes);
    bytes[victim.start + 5] = bytes[victim.start + 5]! ^ 0x40;
    writeFileSync(path, bytes);
    const logged: string[] = [];
    const store = await open(dir, { logger: { info() {}, warn() {}, error: (_o, msg) => void logged.push(msg ?? "") } });
    expect(store.recovery.dropReason).toBe("corrupt");
    expect(store.recovery.droppedBytes).toBe(scan.validBytes - victim.offset);
    // records before the damage are kept (frame 0 is the schema migration, frames 1… are k0…)
    for (let i = 0; i < 9; i++) expect(store.getMeta(`k${i}`)).toBe(`v${i}`);
    expect(store.getMeta("k9")).toBeUndefined();
    // nothing is lost for good: the cut bytes are kept, unaltered but for the flip
    const saved = readFileSync(store.recovery.droppedSavedTo!);
    const expected = Buffer.from(original.subarray(victim.offset, scan.validBytes));
    expected[victim.start + 5 - victim.offset] = expected[victim.start + 5 - victim.offset]! ^ 0x40;
    expect(saved.equals(expected)).toBe(true);
    expect(logged.join("\n")).toMatch(/corrupt record.*kept in/);
  });

  it("a damaged record header is corrupt too when intact records follow it", async () => {
    const dir = await journalOnly(6);
    const victim = frames(dir).frames[3]!;
    const path = join(dir, "journal");
    const bytes = readFileSync(path);
    bytes[victim.offset + 1] = bytes[victim.offset + 1]! ^ 0xff; // the length
    writeFileSync(path, bytes);
    const store = await open(dir);
    expect(store.recovery.dropReason).toBe("corrupt");
    expect(store.getMeta("k1")).toBe("v1");
    expect(store.getMeta("k2")).toBeUndefined();
  });
});

describe("corrupt snapshot", () => {
  async function withSnapshot(): Promise<{ dir: string; backup: string }> {
    const dir = tempDir();
    const store = await open(dir);
    await store.write((tx) => {
      for (let i = 0; i < 200; i++) tx.insertMail(mail(`m${i}`, { body: "x".repeat(500) }));
    });
    await store.close(); // snapshots
    const after = await open(dir, { snapshotOnClose: false });
    await after.write((tx) => tx.setMeta("after-snapshot", "yes")); // a record only the journal holds
    await after.close();
    const backup = tempDir();
    cpSync(dir, backup, { recursive: true });
    return { dir, backup };
  }

  for (const [kind, damage] of [
    ["unreadable (bad header)", (b: Buffer) => b.fill(0x5a, 0, 100)],
    ["damaged pages (quick_check)", (b: Buffer) => b.fill(0xa5, 4096 * 2 + 8, 4096 * 2 + 600)],
  ] as const) {
    it(`${kind}: set aside, never deleted; open fails with a message naming the kept file; journal untouched`, async () => {
      const { dir, backup } = await withSnapshot();
      const snapshot = join(dir, "troupe.sqlite");
      const bytes = readFileSync(snapshot);
      damage(bytes);
      writeFileSync(snapshot, bytes);
      const journalBefore = readFileSync(join(dir, "journal"));
      const error = await openError(dir);
      expect(error.code).toBe("STORE_CORRUPT_SNAPSHOT");
      const kept = readdirSync(dir).find((n) => n.startsWith("troupe.sqlite.corrupt-"))!;
      expect(kept).toBeDefined();
      expect(error.message).toContain(join(dir, kept));
      expect(error.message).toMatch(/Restore|salvage/);
      expect(existsSync(snapshot)).toBe(false);
      expect(readFileSync(join(dir, kept)).equals(bytes)).toBe(true);
      expect(readFileSync(join(dir, "journal")).equals(journalBefore)).toBe(true);
      expect(existsSync(join(dir, "lock"))).toBe(false);

      // Without its snapshot the journal alone is refused (it would silently lose the snapshot's rows).
      const again = await openError(dir);
      expect(again.code).toBe("STORE_CORRUPT_SNAPSHOT");
      expect(again.message).toMatch(/continues from record \d+, but the snapshot .* only holds records up to 0/);

      // Restoring the snapshot brings everything back, journal included.
      cpSync(join(backup, "troupe.sqlite"), snapshot);
      const store = await open(dir);
      expect(store.listMail()).toHaveLength(200);
      expect(store.getMeta("after-snapshot")).toBe("yes");
    });
  }
});

describe("newer schema", () => {
  async function closedStore(): Promise<string> {
    const dir = tempDir();
    const store = await open(dir);
    await store.write((tx) => tx.setMeta("k", "v"));
    await store.close();
    return dir;
  }

  it("refuses a snapshot of a newer schema version and modifies nothing", async () => {
    const dir = await closedStore();
    const SQL = await initSqlJs();
    const path = join(dir, "troupe.sqlite");
    const db = new SQL.Database(readFileSync(path));
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    writeFileSync(path, db.export());
    db.close();
    const before = fingerprint(dir);
    const error = await openError(dir);
    expect(error.code).toBe("STORE_NEWER_SCHEMA");
    expect(error.message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
    expect(error.message).toMatch(/Upgrade troupe/);
    expect(fingerprint(dir)).toEqual(before);
  });

  it("refuses a journal record of a newer schema version and modifies nothing", async () => {
    const dir = await closedStore();
    const open1 = await open(dir, { snapshotOnClose: false });
    const seq = open1.stats().lastSeq + 1;
    await open1.close();
    const path = join(dir, "journal");
    const scan = frames(dir);
    const bytes = readFileSync(path).subarray(0, scan.validBytes);
    const record = encodeFrame(seq, { v: SCHEMA_VERSION + 1, s: [["CREATE TABLE future (x)", []]], m: 1 });
    // plus a torn tail: even that must not be cut when the store is refused
    writeFileSync(path, Buffer.concat([bytes, record, record.subarray(0, 7)]));
    const before = fingerprint(dir);
    const error = await openError(dir);
    expect(error.code).toBe("STORE_NEWER_SCHEMA");
    expect(error.message).toContain(`record ${seq} has schema version ${SCHEMA_VERSION + 1}`);
    expect(fingerprint(dir)).toEqual(before);
  });

  it("refuses a journal of a newer file format and modifies nothing", async () => {
    const dir = await closedStore();
    const header = fileHeader();
    header.writeUInt32BE(2, 4);
    writeFileSync(join(dir, "journal"), Buffer.concat([header, Buffer.from("whatever a future troupe writes")]));
    const before = fingerprint(dir);
    const error = await openError(dir);
    expect(error.code).toBe("STORE_NEWER_SCHEMA");
    expect(error.message).toMatch(/format 2/);
    expect(fingerprint(dir)).toEqual(before);
  });
});
