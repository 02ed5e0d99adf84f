/**
 * The storage contract. Everything above `src/storage` sees only these types:
 * rows as plain objects (times are epoch milliseconds), synchronous reads from
 * the in-memory database, and writes that resolve only once they are durable.
 */

import type { BuilderSpec, MailMessage } from "../shared/contract.js";
import type { LifeState } from "../shared/vocabulary.js";

export type { LifeState, Priority } from "../shared/vocabulary.js";

/** One incarnation of a builder. A destroyed row stays forever as a tombstone (until `gc`). */
export interface ActorRow {
  /** Incarnation id (nanoid). A new spawn of the same name is a new id. */
  id: string;
  name: string;
  role: string | null;
  /** Name of the parent builder, or null when the operator (root) owns it. */
  parent: string | null;
  /** Incarnation id of the parent builder, or null for the root. */
  parentId: string | null;
  /** Id of the supervisor node this builder is supervised under ("root" or the parent's id). */
  supervisorNode: string;
  state: LifeState;
  substate: string | null;
  /** Persisted XState snapshot (JSON-serialisable) of the builder machine. */
  snapshot: unknown;
  machineVersion: number;
  worktree: string | null;
  branch: string | null;
  ptySocket: string | null;
  /** true: a real PTY; false: pipes fallback; null: not started yet. */
  pty: boolean | null;
  /** The agent process. */
  pid: number | null;
  pidStartTime: number | null;
  /** The pty host process that owns the agent. */
  hostPid: number | null;
  hostStartTime: number | null;
  restarts: number;
  /** Epoch ms of each restart inside the current intensity window and before. */
  restartTimes: number[];
  /** The validated spawn request (command, agent profile, restart type, env, policy, …). */
  spec: BuilderSpec;
  /**
   * Write-ahead intent of an operation in progress (spawn, restart, stop, destroy)
   * and the last step it completed; null when nothing is in flight.
   */
  intent: { op: string; step: string; at: number } | null;
  createdAt: number;
  updatedAt: number;
  destroyedAt: number | null;
  lastActivityAt: number | null;
}

/** One transition of one builder. */
export interface HistoryRow {
  seq: number;
  actorId: string;
  name: string;
  from: string;
  to: string;
  event: string;
  at: number;
}

/** One message (DESIGN §8), as stored and as every caller sees it. */
export type MailRow = MailMessage;

export interface MailQuery {
  toId?: string | null;
  to?: string;
  fromId?: string;
  threadId?: string;
  unread?: boolean;
  undelivered?: boolean;
  limit?: number;
}

/** Mutations grouped into one journal record: applied together or not at all. */
export interface WriteTx {
  insertActor(row: ActorRow): void;
  updateActor(id: string, patch: Partial<Omit<ActorRow, "id">>): void;
  /** Removes a tombstone for good (only `gc` does this). */
  deleteActor(id: string): void;
  appendHistory(row: Omit<HistoryRow, "seq">): void;
  insertMail(row: MailRow): void;
  updateMail(id: string, patch: Partial<Pick<MailRow, "deliveredAt" | "readAt">>): void;
  setMeta(key: string, value: string): void;
}

export interface RecoveryReport {
  /** Sequence number of the snapshot loaded (0 when none). */
  snapshotSeq: number;
  /** Records replayed from the journal. */
  replayed: number;
  /** Bytes cut from the journal at the first torn or corrupt record (0 when clean). */
  droppedBytes: number;
  /** "torn" (an incomplete tail, the normal trace of a crash) or "corrupt" (a checksum mismatch). */
  dropReason: "torn" | "corrupt" | null;
  /** Where the dropped bytes were saved, so nothing is lost for good. */
  droppedSavedTo: string | null;
  /** Schema migrations applied at open (from → to), if any. */
  migratedFrom: number | null;
  /** A lock of a dead (or reused) pid was taken over. */
  staleLockTakenOver: { pid: number; startTime: number | null } | null;
}

export interface SnapshotReport {
  seq: number;
  bytes: number;
  /** The longest synchronous stretch of the snapshot (the event-loop stall it caused). */
  exportMs: number;
  totalMs: number;
  /** Where the image was built: a worker thread (from the files) or the main thread (from memory). */
  thread?: "worker" | "main";
}

export interface StoreStats {
  lastSeq: number;
  durableSeq: number;
  journalBytes: number;
  snapshotSeq: number;
  /** fdatasync calls on the journal since open (group commit makes it far fewer than writes). */
  fsyncs?: number;
  /** Journal write batches since open. */
  journalWrites?: number;
  /** Snapshots taken since open. */
  snapshots?: number;
}

export interface Store {
  readonly dir: string;
  readonly recovery: RecoveryReport;

  getActor(id: string): ActorRow | undefined;
  /** The newest incarnation of `name` (a tombstone only when `includeDestroyed`). */
  findActorByName(name: string, options?: { includeDestroyed?: boolean }): ActorRow | undefined;
  listActors(options?: { includeDestroyed?: boolean }): ActorRow[];
  history(actorId: string): HistoryRow[];
  getMail(id: string): MailRow | undefined;
  listMail(query?: MailQuery): MailRow[];
  getMeta(key: string): string | undefined;

  /**
   * Applies the mutations to memory at once (all or none: a failing statement
   * throws synchronously and nothing is kept) and resolves once the journal
   * record holding them is fdatasync'ed. Mutations issued in the same tick
   * share one write and one fsync (group commit).
   */
  write(fn: (tx: WriteTx) => void): Promise<void>;

  /** Takes a snapshot now (also taken by journal size, by time and on close). */
  snapshot(): Promise<SnapshotReport>;
  stats(): StoreStats;
  /** Flushes, snapshots, releases the lock. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** The state directory, normally `<workspace>/.troupe/state`. */
  dir: string;
  /** Snapshot when the journal grows past this many bytes (default 64 MiB). */
  snapshotJournalBytes?: number;
  /** Snapshot when this long has passed since the last one and the journal is not empty (default 5 min). */
  snapshotIntervalMs?: number;
  /** A pino-compatible logger; defaults to a silent one. */
  /**
   * Databases at least this large (bytes) are snapshotted by a worker thread
   * from the files, so the export never stalls the event loop (default 8 MiB;
   * 0: always; Infinity: never).
   */
  workerSnapshotBytes?: number;
  /** Take a snapshot on close() (default true; false leaves the journal to be replayed at the next open). */
  snapshotOnClose?: boolean;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}
