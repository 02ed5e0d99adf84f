import { TroupeError } from "../shared/errors.js";
import { ACTOR_FIELDS, INSERT_ACTOR_SQL, INSERT_MAIL_SQL, MAIL_FIELDS, actorParams, mailParams, updateStatement } from "./rows.js";
import { SCHEMA_VERSION_KEY, SNAPSHOT_SEQ_KEY } from "./schema.js";
import type { Db, SqlValue, Statement } from "./sql.js";
import type { ActorRow, HistoryRow, MailRow, WriteTx } from "./types.js";

const RESERVED_META = new Set([SNAPSHOT_SEQ_KEY, SCHEMA_VERSION_KEY]);
const MAIL_UPDATABLE = ["deliveredAt", "readAt"] as const;

/**
 * The WriteTx handed to `store.write`. Each mutation runs at once inside the
 * open SQLite transaction (so a constraint violation throws right where the
 * caller made it) and is recorded as the statement the journal will replay.
 */
export class Tx implements WriteTx {
  readonly statements: Statement[] = [];
  private sealed = false;

  constructor(private readonly db: Db) {}

  /** After the callback returns, a leaked tx must not write outside any transaction. */
  seal(): void {
    this.sealed = true;
  }

  private exec(sql: string, params: SqlValue[]): number {
    if (this.sealed) throw new TroupeError("INVALID_ARGUMENT", "This WriteTx was used after its write() callback returned; make every mutation inside the callback.");
    const changed = this.db.run(sql, params);
    this.statements.push([sql, params]);
    return changed;
  }

  insertActor(row: ActorRow): void {
    this.exec(INSERT_ACTOR_SQL, actorParams(row));
  }

  updateActor(id: string, patch: Partial<Omit<ActorRow, "id">>): void {
    const update = updateStatement<ActorRow>("actors", ACTOR_FIELDS, id, patch);
    if (!update) return;
    if (this.exec(update[0], update[1]) === 0) {
      throw new TroupeError("NOT_FOUND", `No actor with id "${id}" to update; it was never stored or has been garbage-collected.`, { id });
    }
  }

  /** Removes a tombstone and its history for good (only `gc` does this). */
  deleteActor(id: string): void {
    this.exec("DELETE FROM history WHERE actor_id = ?", [id]);
    this.exec("DELETE FROM actors WHERE id = ?", [id]);
  }

  appendHistory(row: Omit<HistoryRow, "seq">): void {
    this.exec("INSERT INTO history (actor_id, name, from_state, to_state, event, at) VALUES (?, ?, ?, ?, ?, ?)", [row.actorId, row.name, row.from, row.to, row.event, row.at]);
  }

  insertMail(row: MailRow): void {
    this.exec(INSERT_MAIL_SQL, mailParams(row));
  }

  updateMail(id: string, patch: Partial<Pick<MailRow, "deliveredAt" | "readAt">>): void {
    const update = updateStatement<MailRow>("mail", MAIL_FIELDS, id, patch, MAIL_UPDATABLE);
    if (!update) return;
    if (this.exec(update[0], update[1]) === 0) {
      throw new TroupeError("NOT_FOUND", `No message with id "${id}" to update.`, { id });
    }
  }

  setMeta(key: string, value: string): void {
    if (RESERVED_META.has(key)) throw new TroupeError("INVALID_ARGUMENT", `Meta key "${key}" is reserved for the store itself; pick another key.`, { key });
    if (typeof value !== "string") throw new TroupeError("INVALID_ARGUMENT", `Meta value for "${key}" must be a string; serialise it first.`, { key });
    this.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]);
  }
}
