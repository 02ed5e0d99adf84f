import { mkdir, readdir, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isProcessAlive } from "../shared/proc.js";
import { FILE_HEADER_BYTES, JOURNAL_FILE } from "./frame.js";
import { DIR_MODE, ioError } from "./fsutil.js";
import { JournalWriter } from "./journal.js";
import { acquireLock, type HeldLock } from "./lock.js";
import { cutJournal, readJournal, replayJournal } from "./recovery.js";
import { SNAPSHOT_FILE, loadSnapshot } from "./snapshot.js";
import type { Db } from "./sql.js";
import { SqlStore, type Logger } from "./store.js";
import type { OpenStoreOptions, RecoveryReport, Store } from "./types.js";


const DEFAULT_SNAPSHOT_JOURNAL_BYTES = 64 * 1024 * 1024;
const DEFAULT_SNAPSHOT_INTERVAL_MS = 5 * 60_000;
// Below this an export stalls the event loop for a few ms only: not worth a thread.
const DEFAULT_WORKER_SNAPSHOT_BYTES = 8 * 1024 * 1024;

const silent: Logger = { info() {}, warn() {}, error() {} };

/**
 * Opens the workspace store in `dir`: takes the lock, loads the snapshot,
 * replays the journal (cutting a torn or corrupt tail, kept aside), migrates
 * the schema forward. Everything that can refuse (lock, newer schema, corrupt
 * snapshot, mismatched journal) does so before the journal is modified.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const dir = resolve(options.dir);
  const log = options.logger ?? silent;
  await mkdir(dir, { recursive: true, mode: DIR_MODE }).catch((error: unknown) => {
    throw ioError("create the state directory", dir, error);
  });
  const lock = await acquireLock(dir);
  if (lock.staleTakenOver) log.warn({ stale: lock.staleTakenOver }, "storage: took over the lock of a process that is gone");
  let db: Db | null = null;
  let journal: JournalWriter | null = null;
  try {
    await removeLeftovers(dir);
    const snapshot = await loadSnapshot(dir);
    db = snapshot.db;
    const journalPath = join(dir, JOURNAL_FILE);
    const read = await readJournal(journalPath, dir);
    const { replayed, lastSeq } = replayJournal(db, read, snapshot.seq, { journal: journalPath, snapshot: join(dir, SNAPSHOT_FILE), dir });

    const drop = read.scan.drop;
    let droppedSavedTo: string | null = null;
    if (drop) {
      droppedSavedTo = await cutJournal(journalPath, read);
      const entry = { bytes: drop.bytes, offset: drop.offset, reason: drop.reason, detail: drop.detail, savedTo: droppedSavedTo };
      if (drop.reason === "torn") log.warn(entry, `storage: cut ${drop.bytes} bytes of a torn journal tail (the trace of a crash)`);
      else log.error(entry, `storage: cut ${drop.bytes} bytes of the journal at a corrupt record; the cut bytes were kept in ${droppedSavedTo}`);
    }
    let size = read.scan.validBytes;
    let fileBytes = drop ? size : read.scan.totalBytes;
    if (size < FILE_HEADER_BYTES) {
      await JournalWriter.create(journalPath);
      size = fileBytes = FILE_HEADER_BYTES;
    }
    journal = await JournalWriter.open(journalPath, size, fileBytes, lastSeq);

    const recovery: RecoveryReport = {
      snapshotSeq: snapshot.seq,
      replayed,
      droppedBytes: drop?.bytes ?? 0,
      dropReason: drop?.reason ?? null,
      droppedSavedTo,
      migratedFrom: null,
      staleLockTakenOver: lock.staleTakenOver,
    };
    const store = new SqlStore({
      dir,
      db,
      journal,
      lock,
      recovery,
      lastSeq,
      snapshotSeq: snapshot.seq,
      logger: log,
      snapshotJournalBytes: options.snapshotJournalBytes ?? DEFAULT_SNAPSHOT_JOURNAL_BYTES,
      snapshotIntervalMs: options.snapshotIntervalMs ?? DEFAULT_SNAPSHOT_INTERVAL_MS,
      snapshotOnClose: options.snapshotOnClose ?? true,
      workerSnapshotBytes: options.workerSnapshotBytes ?? DEFAULT_WORKER_SNAPSHOT_BYTES,
    });
    recovery.migratedFrom = await store.migrate();
    store.start();
    log.info({ dir, ...recovery }, "storage: opened");
    return store;
  } catch (error) {
    await closeQuietly(journal, db, lock);
    throw error;
  }
}

async function closeQuietly(journal: JournalWriter | null, db: Db | null, lock: HeldLock): Promise<void> {
  await journal?.close().catch(() => undefined);
  try {
    db?.close();
  } catch {
    // already closed
  }
  await lock.release();
}

/** Temp files of writes a crash interrupted: never complete, never needed. */
async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const lockTemp = /^\.lock\.(\d+)\./.exec(name);
    const leftover = name === `.${SNAPSHOT_FILE}.tmp` || name === `.${JOURNAL_FILE}.tmp` || (lockTemp !== null && !isProcessAlive(Number(lockTemp[1])));
    if (leftover) await unlink(join(dir, name)).catch(() => undefined);
  }
}
