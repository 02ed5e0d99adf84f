import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { TroupeError } from "../shared/errors.js";
import { ioError, renameAside } from "./fsutil.js";
import { SCHEMA_VERSION, SCHEMA_VERSION_KEY, SNAPSHOT_SEQ_KEY } from "./schema.js";
import { Db } from "./sql.js";

export const SNAPSHOT_FILE = "troupe.sqlite";

export interface LoadedSnapshot {
  db: Db;
  /** Journal sequence number the snapshot holds (0 without a snapshot). */
  seq: number;
  /** PRAGMA user_version of the loaded database (0 for a new one). */
  version: number;
  bytes: number;
}

/**
 * Loads `troupe.sqlite` (or an empty database when there is none). A file
 * SQLite cannot read, or whose quick_check fails, is renamed aside (never
 * deleted) and the open fails; one written by a newer troupe is refused and
 * left as it is.
 */
export async function loadSnapshot(dir: string): Promise<LoadedSnapshot> {
  const path = join(dir, SNAPSHOT_FILE);
  let data: Buffer | null = null;
  try {
    data = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw ioError("read the snapshot", path, error);
  }
  if (data === null) return { db: await Db.open(), seq: 0, version: 0, bytes: 0 };

  let opened: OpenedSnapshot;
  try {
    opened = await openSnapshotData(data, { check: true });
  } catch (error) {
    const kept = await renameAside(path, "corrupt").catch((renameError: unknown) => {
      throw ioError("set aside the corrupt snapshot", path, renameError);
    });
    throw new TroupeError(
      "STORE_CORRUPT_SNAPSHOT",
      `The workspace snapshot ${path} is corrupt (${(error as Error).message}). It was moved to ${kept} and the journal was left untouched. ` +
        `Restore troupe.sqlite from a backup, or salvage the kept copy (e.g. \`sqlite3 ${kept} .recover | sqlite3 ${path}\`) and open the workspace again; ` +
        `to start with an empty state instead, move the whole directory ${dir} aside.`,
      { path, keptAs: kept },
      { cause: error },
    );
  }
  const newest = Math.max(opened.version, opened.stamped ?? 0);
  if (newest > SCHEMA_VERSION) {
    opened.db.close();
    throw newerSchema(`the snapshot ${path} has schema version ${newest}`, dir);
  }
  return { db: opened.db, seq: opened.seq, version: opened.version, bytes: data.length };
}

interface OpenedSnapshot {
  db: Db;
  version: number;
  stamped: number | null;
  seq: number;
}

/** Opens a snapshot image; throws when SQLite cannot read it (or, with `check`, when quick_check fails). */
export async function openSnapshotData(data: Uint8Array | null, options: { check: boolean }): Promise<OpenedSnapshot> {
  const db = await Db.open(data ?? undefined);
  try {
    if (data && options.check) {
      const check = db.all("PRAGMA quick_check").map((row) => String(row[0]));
      if (check.length !== 1 || check[0] !== "ok") throw new Error(`quick_check: ${check.slice(0, 3).join("; ")}`);
    }
    return { db, ...readInfo(db) };
  } catch (error) {
    db.close();
    throw error;
  }
}

function readInfo(db: Db): { version: number; stamped: number | null; seq: number } {
  const version = Number(db.get("PRAGMA user_version")?.[0] ?? 0);
  const hasMeta = db.get("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'") !== undefined;
  if (!hasMeta) return { version, stamped: null, seq: 0 };
  const meta = (key: string): string | undefined => {
    const value = db.get("SELECT value FROM meta WHERE key = ?", [key])?.[0];
    return value === undefined || value === null ? undefined : String(value);
  };
  const stamped = meta(SCHEMA_VERSION_KEY);
  const seq = Number(meta(SNAPSHOT_SEQ_KEY) ?? 0);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`bad ${SNAPSHOT_SEQ_KEY} ${meta(SNAPSHOT_SEQ_KEY)}`);
  return { version, stamped: stamped === undefined ? null : Number(stamped), seq };
}

export function newerSchema(what: string, dir: string): TroupeError {
  return new TroupeError(
    "STORE_NEWER_SCHEMA",
    `This workspace was written by a newer troupe: ${what}, but this troupe knows schema version ${SCHEMA_VERSION} at most. ` +
      `Nothing was changed. Upgrade troupe (npm install -g troupe@latest) to open ${dir}.`,
    { dir, supported: SCHEMA_VERSION },
  );
}

/**
 * Stamps the sequence number into the database and exports it. Synchronous
 * on purpose: no write can slip between the stamp and the image.
 */
export function captureSnapshot(db: Db, seq: number): Uint8Array {
  db.run(`INSERT INTO meta (key, value) VALUES ('${SNAPSHOT_SEQ_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(seq)]);
  return db.export();
}
