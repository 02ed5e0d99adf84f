import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { JOURNAL_FILE } from "./frame.js";
import { ioError, writeFileAtomic } from "./fsutil.js";
import { readJournal, replayJournal } from "./recovery.js";
import { SNAPSHOT_FILE, captureSnapshot, openSnapshotData } from "./snapshot.js";

export interface CompactResult {
  seq: number;
  bytes: number;
  /** Records applied over the previous snapshot. */
  replayed: number;
  ms: number;
}

/**
 * Builds the snapshot holding records up to `seq` from the files alone: the
 * current snapshot plus the durable journal records after it, replayed
 * exactly as recovery would. Run in a worker thread, it takes the whole cost
 * of a snapshot of a large database off the owner's event loop; and since it
 * starts from disk, each snapshot also proves the journal replays.
 */
export async function compactToSnapshot(dir: string, seq: number): Promise<CompactResult> {
  const started = performance.now();
  const snapshotPath = join(dir, SNAPSHOT_FILE);
  const journalPath = join(dir, JOURNAL_FILE);
  let data: Buffer | null = null;
  try {
    data = await readFile(snapshotPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw ioError("read the snapshot", snapshotPath, error);
  }
  const opened = await openSnapshotData(data, { check: false });
  try {
    if (opened.seq > seq) throw new Error(`snapshot already holds record ${opened.seq}, past ${seq}`);
    // The owner keeps appending: a frame after `seq` may be half written; only the prefix up to `seq` matters.
    const journal = await readJournal(journalPath, dir);
    const { replayed, lastSeq } = replayJournal(opened.db, journal, opened.seq, { journal: journalPath, snapshot: snapshotPath, dir }, seq);
    if (lastSeq !== seq) throw new Error(`the journal holds records up to ${lastSeq} only, ${seq} was expected`);
    const image = captureSnapshot(opened.db, seq);
    await writeFileAtomic(snapshotPath, image);
    return { seq, bytes: image.length, replayed, ms: performance.now() - started };
  } finally {
    opened.db.close();
  }
}
