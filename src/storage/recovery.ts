import { open, readFile } from "node:fs/promises";
import { TroupeError } from "../shared/errors.js";
import { JOURNAL_FORMAT, parsePayload, scanJournal, type JournalScan } from "./frame.js";
import { ioError, writeAside } from "./fsutil.js";
import { SCHEMA_VERSION } from "./schema.js";
import { newerSchema } from "./snapshot.js";
import type { Db } from "./sql.js";

export interface ReadJournal {
  buf: Buffer;
  scan: JournalScan;
  exists: boolean;
}

/** Reads and checks the journal; refuses a newer format. Modifies nothing. */
export async function readJournal(path: string, dir: string): Promise<ReadJournal> {
  let buf: Buffer;
  let exists = true;
  try {
    buf = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw ioError("read the journal", path, error);
    buf = Buffer.alloc(0);
    exists = false;
  }
  const scan = scanJournal(buf);
  if (scan.format !== null && scan.format > JOURNAL_FORMAT) {
    throw newerSchema(`the journal ${path} has format ${scan.format} (this troupe reads format ${JOURNAL_FORMAT})`, dir);
  }
  return { buf, scan, exists };
}

/**
 * Applies the intact records after `snapshotSeq` to `db`, in one transaction
 * (they were all committed once; a failure here aborts the open). Touches
 * only memory, so a refusal leaves the workspace exactly as it was.
 */
export function replayJournal(
  db: Db,
  journal: ReadJournal,
  snapshotSeq: number,
  paths: { journal: string; snapshot: string; dir: string },
  upTo = Number.MAX_SAFE_INTEGER,
): { replayed: number; lastSeq: number } {
  const { buf, scan } = journal;
  const frames = scan.frames.filter((f) => f.seq > snapshotSeq && f.seq <= upTo);
  const first = frames[0];
  if (first && first.seq !== snapshotSeq + 1) {
    throw new TroupeError(
      "STORE_CORRUPT_SNAPSHOT",
      `The journal ${paths.journal} continues from record ${first.seq}, but the snapshot ${paths.snapshot} only holds records up to ${snapshotSeq} ` +
        `(it is missing, or older than the journal). Nothing was changed. Put back the snapshot that goes with this journal ` +
        `(e.g. a salvaged troupe.sqlite.corrupt-* copy), or move ${paths.dir} aside to start with an empty state.`,
      { journal: paths.journal, snapshot: paths.snapshot, journalFrom: first.seq, snapshotSeq },
    );
  }
  if (frames.length === 0) return { replayed: 0, lastSeq: Math.max(snapshotSeq, Math.min(upTo, scan.frames.at(-1)?.seq ?? 0)) };
  db.begin();
  try {
    for (const frame of frames) {
      const payload = parsePayload(buf, frame);
      if (!payload) throw new Error(`record ${frame.seq} is unreadable although its checksum matches`);
      if (payload.v > SCHEMA_VERSION) throw newerSchema(`journal record ${frame.seq} has schema version ${payload.v}`, paths.dir);
      for (const [sql, params] of payload.s) db.run(sql, params);
    }
    db.commit();
  } catch (error) {
    db.rollback();
    if (error instanceof TroupeError) throw error;
    throw new TroupeError(
      "STORE_CORRUPT_SNAPSHOT",
      `Replaying the journal ${paths.journal} over the snapshot ${paths.snapshot} failed (${(error as Error).message}): the two do not belong together. ` +
        `Nothing was changed. Restore the matching snapshot from a backup, or move ${paths.dir} aside to start with an empty state.`,
      { journal: paths.journal, snapshot: paths.snapshot },
      { cause: error },
    );
  }
  return { replayed: frames.length, lastSeq: frames.at(-1)!.seq };
}

/** Saves the bytes after the intact prefix aside, then cuts the journal there. */
export async function cutJournal(path: string, journal: ReadJournal): Promise<string | null> {
  const drop = journal.scan.drop;
  if (!drop) return null;
  const savedTo = await writeAside(path, "dropped", journal.buf.subarray(drop.offset, drop.offset + drop.bytes)).catch((error: unknown) => {
    throw ioError("save the damaged end of the journal", path, error);
  });
  const fh = await open(path, "r+").catch((error: unknown) => {
    throw ioError("open the journal", path, error);
  });
  try {
    await fh.truncate(drop.offset);
    await fh.datasync();
  } catch (error) {
    throw ioError("truncate the journal", path, error);
  } finally {
    await fh.close();
  }
  return savedTo;
}
