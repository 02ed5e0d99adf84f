import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { FILE_HEADER_BYTES, fileHeader } from "./frame.js";
import { FILE_MODE, fsyncDir, ioError, writeAll, writeFileAtomic } from "./fsutil.js";

/**
 * The journal grows in zero-filled chunks written ahead of the records: a
 * record then overwrites blocks the file already has, and its fdatasync
 * flushes data only, not the inode (file size) too — as SQLite's WAL does.
 */
const PREALLOCATE_BYTES = 1024 * 1024;
const ZEROS = Buffer.alloc(PREALLOCATE_BYTES);
const COPY_CHUNK_BYTES = 4 * 1024 * 1024;

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * The append side of the journal, with group commit: every frame appended
 * while no flush runs (within one event-loop turn) or while one is in flight
 * goes out in the next single write + fdatasync. Frames carry consecutive
 * sequence numbers and are written in that order.
 */
export class JournalWriter {
  /** Bytes of journal content (header included); the file may be longer (zeros preallocated). */
  size: number;
  /** Length of the file: `size` plus preallocated zeros. */
  private allocated: number;
  durableSeq: number;
  fsyncs = 0;
  flushes = 0;
  /** Set when an IO error made the journal unusable: memory may be ahead of disk. */
  failure: Error | null = null;
  /** Called after each durable batch (snapshot triggers hang here). */
  onFlushed: (() => void) | null = null;

  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingFirstSeq = 0;
  private appendedSeq: number;
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private paused = false;
  /** Offset of the frame with sequence `watch.seq`, noted when it is written. */
  private watch: { seq: number; offset: number | null } | null = null;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    size: number,
    allocated: number,
    lastSeq: number,
  ) {
    this.size = size;
    this.allocated = Math.max(size, allocated);
    this.durableSeq = lastSeq;
    this.appendedSeq = lastSeq;
  }

  /** Opens an existing, already repaired journal whose content ends at `size` (zeros may follow up to `fileBytes`). */
  static async open(path: string, size: number, fileBytes: number, lastSeq: number): Promise<JournalWriter> {
    const fh = await open(path, "r+").catch((error: unknown) => {
      throw ioError("open the journal", path, error);
    });
    return new JournalWriter(path, fh, size, fileBytes, lastSeq);
  }

  /** Creates an empty journal (header only), atomically. */
  static async create(path: string): Promise<void> {
    await writeFileAtomic(path, fileHeader());
  }

  append(seq: number, frame: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (seq !== this.appendedSeq + 1) throw new Error(`journal append out of order: ${seq} after ${this.appendedSeq}`);
    if (this.pending.length === 0) this.pendingFirstSeq = seq;
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    this.appendedSeq = seq;
    const done = this.whenDurable(seq);
    this.schedule();
    return done;
  }

  /** Resolves once every frame up to `seq` is on disk. */
  whenDurable(seq: number = this.appendedSeq): Promise<void> {
    if (seq <= this.durableSeq) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing || this.paused) return;
    this.scheduled = true;
    // setImmediate, not nextTick: writes issued by promise continuations of
    // this same turn (e.g. 64 writers woken by one fsync) join this batch.
    setImmediate(() => {
      this.scheduled = false;
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing || this.paused || this.pending.length === 0 || this.failure) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length > 0 && !this.paused && !this.failure) {
      const frames = this.pending;
      const firstSeq = this.pendingFirstSeq;
      const bytes = this.pendingBytes;
      this.pending = [];
      this.pendingBytes = 0;
      const lastSeq = firstSeq + frames.length - 1;
      const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes);
      const offset = this.size;
      if (this.watch && this.watch.offset === null && this.watch.seq >= firstSeq && this.watch.seq <= lastSeq) {
        let at = offset;
        for (let i = 0; i < this.watch.seq - firstSeq; i++) at += frames[i]!.length;
        this.watch.offset = at;
      }
      try {
        await writeAll(this.fh, buf, offset);
        this.size += buf.length;
        if (this.size > this.allocated) {
          // Same fdatasync as the records: one inode flush per chunk, not per batch.
          await writeAll(this.fh, ZEROS, this.size);
          this.allocated = this.size + ZEROS.length;
        }
        this.flushes++;
        await this.fh.datasync();
        this.fsyncs++;
      } catch (error) {
        this.fail(ioError("append to the journal", this.path, error));
        return;
      }
      this.durableSeq = lastSeq;
      this.release();
      this.onFlushed?.();
    }
  }

  private release(): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.seq <= this.durableSeq) n++;
    if (n === 0) return;
    const done = this.waiters.splice(0, n);
    for (const w of done) w.resolve();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.pending = [];
    this.pendingBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(this.failure);
  }

  /** Stops flushing (appends keep queueing) and waits for the flush in flight. */
  private async pause(): Promise<void> {
    this.paused = true;
    while (this.flushing) await this.flushing;
  }

  private resume(): void {
    this.paused = false;
    this.kick();
  }

  /** Starts noting where the frame `seq` lands, for a later `rewriteAfter(seq - 1)`. */
  watchFrom(seq: number): void {
    this.watch = { seq, offset: null };
  }

  /**
   * Replaces the journal by one holding only the frames after `seq` (already
   * covered by a durable snapshot). The frames already in the file are copied
   * while flushing goes on; flushing pauses only while the last few are
   * copied and the new file is synced and renamed into place.
   */
  async rewriteAfter(seq: number): Promise<void> {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.tmp`);
    let renamed = false;
    let next: FileHandle | null = null;
    let written = FILE_HEADER_BYTES;
    const copy = async (from: number, to: number): Promise<void> => {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(to - from, 0), COPY_CHUNK_BYTES));
      for (let at = from; at < to; ) {
        const { bytesRead } = await this.fh.read(chunk, 0, Math.min(chunk.length, to - at), at);
        if (bytesRead === 0) throw new Error("journal shorter than expected");
        await writeAll(next!, chunk.subarray(0, bytesRead), written);
        written += bytesRead;
        at += bytesRead;
      }
    };
    try {
      if (this.failure) throw this.failure;
      next = await open(tmp, "w+", FILE_MODE);
      await writeAll(next, fileHeader(), 0);
      // Frames land only after `size` and never move: what is before it can be read while flushing goes on.
      let cursor = this.watch?.seq === seq + 1 ? this.watch.offset : null;
      if (cursor !== null) {
        const end = this.size;
        await copy(cursor, end);
        cursor = Math.max(cursor, end);
      }
      await this.pause();
      if (this.failure) throw this.failure;
      if (this.durableSeq > seq) {
        cursor ??= this.watch?.seq === seq + 1 ? this.watch.offset : null;
        if (cursor === null) throw new Error(`journal rewrite: offset of frame ${seq + 1} unknown`);
        await copy(cursor, this.size);
      }
      await next.datasync();
      await rename(tmp, this.path);
      renamed = true;
      const old = this.fh;
      this.fh = next;
      next = null;
      this.size = this.allocated = written;
      await old.close().catch(() => undefined);
      // Until the directory is synced the old journal may come back after a
      // crash, without the frames written from now on: fail loudly instead.
      await fsyncDir(dirname(this.path));
    } catch (error) {
      if (next) await next.close().catch(() => undefined);
      if (renamed) {
        this.fail(ioError("replace the journal", this.path, error));
      } else {
        await unlink(tmp).catch(() => undefined);
      }
      throw error;
    } finally {
      this.watch = null;
      this.resume();
    }
  }

  /** Waits for every appended frame, then closes the file. */
  async close(): Promise<void> {
    try {
      await this.whenDurable();
    } finally {
      while (this.flushing) await this.flushing.catch(() => undefined);
      await this.fh.close().catch(() => undefined);
    }
  }
}
