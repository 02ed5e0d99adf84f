import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { TroupeError } from "../shared/errors.js";
import { SerialQueue } from "../shared/serial-queue.js";
import { encodeFrame, type RecordPayload } from "./frame.js";
import { ioError, writeFileAtomic } from "./fsutil.js";
import type { JournalWriter } from "./journal.js";
import type { HeldLock } from "./lock.js";
import { ACTOR_COLUMNS, HISTORY_COLUMNS, MAIL_COLUMNS, toActor, toHistory, toMail } from "./rows.js";
import { SCHEMA_VERSION, migrationStatements } from "./schema.js";
import { SNAPSHOT_FILE, captureSnapshot } from "./snapshot.js";
import type { Db, SqlValue } from "./sql.js";
import { Tx } from "./tx.js";
import { snapshotWorker } from "./worker-client.js";
import type { ActorRow, HistoryRow, MailQuery, MailRow, OpenStoreOptions, RecoveryReport, SnapshotReport, Store, StoreStats, WriteTx } from "./types.js";

export type Logger = NonNullable<OpenStoreOptions["logger"]>;

export interface StoreParts {
  dir: string;
  db: Db;
  journal: JournalWriter;
  lock: HeldLock;
  recovery: RecoveryReport;
  lastSeq: number;
  snapshotSeq: number;
  logger: Logger;
  snapshotJournalBytes: number;
  snapshotIntervalMs: number;
  snapshotOnClose: boolean;
  workerSnapshotBytes: number;
}

/** The Store over an in-memory sql.js database made durable by the journal. */
export class SqlStore implements Store {
  readonly dir: string;
  readonly recovery: RecoveryReport;
  private readonly db: Db;
  private readonly journal: JournalWriter;
  private readonly lock: HeldLock;
  private readonly log: Logger;
  private readonly opts: Pick<StoreParts, "snapshotJournalBytes" | "snapshotIntervalMs" | "snapshotOnClose" | "workerSnapshotBytes">;
  private lastSeq: number;
  private snapshotSeq: number;
  private snapshots = 0;
  private lastSnapshotAt = Date.now();
  /** Snapshots take turns: one export of the database at a time. */
  private readonly snapshotTurns = new SerialQueue();
  private autoSnapshotQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;

  constructor(parts: StoreParts) {
    this.dir = parts.dir;
    this.recovery = parts.recovery;
    this.db = parts.db;
    this.journal = parts.journal;
    this.lock = parts.lock;
    this.log = parts.logger;
    this.lastSeq = parts.lastSeq;
    this.snapshotSeq = parts.snapshotSeq;
    this.opts = parts;
  }

  /** Runs the migrations this database lacks, each as a journaled record. Returns the version migrated from. */
  async migrate(): Promise<number | null> {
    const from = Number(this.db.get("PRAGMA user_version")?.[0] ?? 0);
    if (from >= SCHEMA_VERSION) return null;
    let done: Promise<void> = Promise.resolve();
    for (let version = from + 1; version <= SCHEMA_VERSION; version++) {
      const statements = migrationStatements(version);
      this.db.begin();
      try {
        for (const [sql, params] of statements) this.db.run(sql, params);
      } catch (error) {
        this.db.rollback();
        throw error;
      }
      done = this.commit({ v: version, s: statements, m: 1 });
    }
    await done;
    this.log.info({ from, to: SCHEMA_VERSION }, "storage: schema migrated");
    return from;
  }

  /** Starts the snapshot triggers (journal size and time). */
  start(): void {
    this.journal.onFlushed = () => this.autoSnapshot();
    const every = this.opts.snapshotIntervalMs;
    if (every > 0 && Number.isFinite(every)) {
      this.timer = setInterval(() => this.autoSnapshot(), Math.min(every, 60_000));
      this.timer.unref();
    }
  }

  /** Why a snapshot is due now, if one is. */
  private snapshotDue(): string | null {
    if (this.closing || this.lastSeq === this.snapshotSeq) return null;
    if (this.journal.size >= this.opts.snapshotJournalBytes) return "journal size";
    const every = this.opts.snapshotIntervalMs;
    if (every > 0 && Date.now() - this.lastSnapshotAt >= every) return "interval";
    return null;
  }

  // ---- reads (synchronous, from memory) ----

  getActor(id: string): ActorRow | undefined {
    this.assertOpen();
    const row = this.db.get(`SELECT ${ACTOR_COLUMNS} FROM actors WHERE id = ?`, [id]);
    return row && toActor(row);
  }

  findActorByName(name: string, options: { includeDestroyed?: boolean } = {}): ActorRow | undefined {
    this.assertOpen();
    const live = options.includeDestroyed ? "" : " AND state <> 'destroyed'";
    const row = this.db.get(`SELECT ${ACTOR_COLUMNS} FROM actors WHERE name = ?${live} ORDER BY created_at DESC, rowid DESC LIMIT 1`, [name]);
    return row && toActor(row);
  }

  listActors(options: { includeDestroyed?: boolean } = {}): ActorRow[] {
    this.assertOpen();
    const live = options.includeDestroyed ? "" : " WHERE state <> 'destroyed'";
    return this.db.all(`SELECT ${ACTOR_COLUMNS} FROM actors${live} ORDER BY created_at, rowid`).map(toActor);
  }

  history(actorId: string): HistoryRow[] {
    this.assertOpen();
    return this.db.all(`SELECT ${HISTORY_COLUMNS} FROM history WHERE actor_id = ? ORDER BY seq`, [actorId]).map(toHistory);
  }

  getMail(id: string): MailRow | undefined {
    this.assertOpen();
    const row = this.db.get(`SELECT ${MAIL_COLUMNS} FROM mail WHERE id = ?`, [id]);
    return row && toMail(row);
  }

  /**
   * Messages in creation order. `toId: null` selects mail to the operator;
   * `unread`/`undelivered` filter both ways (true: only unread, false: only read).
   */
  listMail(query: MailQuery = {}): MailRow[] {
    this.assertOpen();
    const where: string[] = [];
    const params: SqlValue[] = [];
    const eq = (column: string, value: string | null | undefined): void => {
      if (value === undefined) return;
      if (value === null) where.push(`${column} IS NULL`);
      else {
        where.push(`${column} = ?`);
        params.push(value);
      }
    };
    eq("to_id", query.toId);
    eq("to_addr", query.to);
    eq("from_id", query.fromId);
    eq("thread_id", query.threadId);
    if (query.unread !== undefined) where.push(query.unread ? "read_at IS NULL" : "read_at IS NOT NULL");
    if (query.undelivered !== undefined) where.push(query.undelivered ? "delivered_at IS NULL" : "delivered_at IS NOT NULL");
    let sql = `SELECT ${MAIL_COLUMNS} FROM mail${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at, rowid`;
    if (query.limit !== undefined) {
      if (!Number.isInteger(query.limit) || query.limit < 0) throw new TroupeError("INVALID_ARGUMENT", `listMail limit must be a non-negative integer (got ${query.limit}).`);
      sql += " LIMIT ?";
      params.push(query.limit);
    }
    return this.db.all(sql, params).map(toMail);
  }

  getMeta(key: string): string | undefined {
    this.assertOpen();
    const value = this.db.get("SELECT value FROM meta WHERE key = ?", [key])?.[0];
    return value === undefined || value === null ? undefined : String(value);
  }

  // ---- writes ----

  write(fn: (tx: WriteTx) => void): Promise<void> {
    this.assertWritable();
    if (this.db.inTransaction) throw new TroupeError("INVALID_ARGUMENT", "store.write() was called inside another write() callback; put all the mutations in one callback.");
    const tx = new Tx(this.db);
    this.db.begin();
    try {
      const result: unknown = fn(tx);
      if (typeof result === "object" && result !== null && typeof (result as { then?: unknown }).then === "function") {
        // Its remaining steps will fail on the sealed tx: that is reported here, not as an unhandled rejection.
        (result as Promise<unknown>).then(undefined, () => undefined);
        throw new TroupeError("INVALID_ARGUMENT", "The store.write() callback must be synchronous: await what you need before calling write(), then mutate inside it.");
      }
    } catch (error) {
      tx.seal();
      this.db.rollback();
      throw error;
    }
    tx.seal();
    if (tx.statements.length === 0) {
      this.db.rollback();
      return this.journal.whenDurable();
    }
    return this.commit({ v: SCHEMA_VERSION, s: tx.statements });
  }

  /** Commits the open transaction holding `payload`'s statements and journals it. */
  private commit(payload: RecordPayload): Promise<void> {
    const seq = this.lastSeq + 1;
    let frame: Buffer;
    try {
      frame = encodeFrame(seq, payload);
      this.db.commit();
    } catch (error) {
      this.db.rollback();
      throw error;
    }
    this.lastSeq = seq;
    return this.journal.append(seq, frame);
  }

  // ---- snapshots ----

  snapshot(): Promise<SnapshotReport> {
    this.assertWritable();
    return this.queueSnapshot();
  }

  private queueSnapshot(): Promise<SnapshotReport> {
    return this.snapshotTurns.run(() => this.takeSnapshot());
  }

  private autoSnapshot(): void {
    if (this.autoSnapshotQueued || this.snapshotDue() === null) return;
    this.autoSnapshotQueued = true;
    let reason: string | null = null;
    const run = this.snapshotTurns.run(() => {
      this.autoSnapshotQueued = false;
      // Asked for while another snapshot ran: that one may have made this one moot.
      reason = this.snapshotDue();
      return reason === null ? null : this.takeSnapshot();
    });
    void run.then(
      (report) => report && this.log.info({ reason, ...report }, "storage: snapshot taken"),
      (error: unknown) => this.log.error({ reason, err: error }, "storage: snapshot failed; the journal still holds every write"),
    );
  }

  private async takeSnapshot(): Promise<SnapshotReport> {
    if (this.journal.failure) throw this.journal.failure;
    const started = performance.now();
    // Frames after `from` stay in the journal; the snapshot may hold a few more (replay skips them).
    const from = this.lastSeq;
    this.journal.watchFrom(from + 1);
    let result: { seq: number; bytes: number; exportMs: number; thread: "worker" | "main" } | null = null;
    if (this.databaseBytes() >= this.opts.workerSnapshotBytes) {
      try {
        await this.journal.whenDurable(from);
        const posted = performance.now();
        const pending = snapshotWorker().compact(this.dir, from);
        const postMs = performance.now() - posted;
        const done = await pending;
        result = { seq: done.seq, bytes: done.bytes, exportMs: postMs, thread: "worker" };
      } catch (error) {
        if (this.journal.failure) throw this.journal.failure;
        this.log.warn({ err: error }, "storage: snapshot worker failed; exporting on the main thread instead");
      }
    }
    if (!result) {
      const seq = this.lastSeq;
      const exportStarted = performance.now();
      const data = captureSnapshot(this.db, seq);
      const exportMs = performance.now() - exportStarted;
      const path = join(this.dir, SNAPSHOT_FILE);
      try {
        await writeFileAtomic(path, data);
      } catch (error) {
        throw ioError("write the snapshot", path, error);
      }
      result = { seq, bytes: data.length, exportMs, thread: "main" };
    }
    this.snapshotSeq = result.seq;
    this.lastSnapshotAt = Date.now();
    this.snapshots++;
    await this.journal.rewriteAfter(from);
    return { ...result, totalMs: performance.now() - started };
  }

  /** Size of the database image (what an export would copy). */
  private databaseBytes(): number {
    const pages = Number(this.db.get("PRAGMA page_count")?.[0] ?? 0);
    const size = Number(this.db.get("PRAGMA page_size")?.[0] ?? 4096);
    return pages * size;
  }

  stats(): StoreStats {
    this.assertOpen();
    return {
      lastSeq: this.lastSeq,
      durableSeq: this.journal.durableSeq,
      journalBytes: this.journal.size,
      snapshotSeq: this.snapshotSeq,
      fsyncs: this.journal.fsyncs,
      journalWrites: this.journal.flushes,
      snapshots: this.snapshots,
    };
  }

  // ---- life ----

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.journal.onFlushed = null;
    try {
      await this.snapshotTurns.settled();
      await this.journal.whenDurable().catch(() => undefined);
      if (this.opts.snapshotOnClose && !this.journal.failure && this.lastSeq > this.snapshotSeq) {
        await this.takeSnapshot().catch((error: unknown) => this.log.error({ err: error }, "storage: snapshot at close failed; the journal still holds every write"));
      }
    } finally {
      await this.journal.close().catch(() => undefined);
      this.db.close();
      this.closed = true;
      await this.lock.release();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw closedError(this.dir);
  }

  private assertWritable(): void {
    if (this.closed || this.closing) throw closedError(this.dir);
    if (this.journal.failure) {
      throw new TroupeError(
        "STORE_IO",
        `The journal of ${this.dir} failed earlier (${this.journal.failure.message}); memory may hold changes that are not on disk. ` +
          `Close this store and open the workspace again: troupe recovers every acknowledged write from the journal.`,
        { dir: this.dir },
        { cause: this.journal.failure },
      );
    }
  }
}

function closedError(dir: string): TroupeError {
  return new TroupeError("STORE_CLOSED", `The store of ${dir} is closed; open the workspace again to use it.`, { dir });
}
