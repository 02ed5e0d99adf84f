import type { Statement } from "./sql.js";

/**
 * Schema versions. A migration is a list of statements run forward from the
 * previous version; it is journaled like any write so that replay rebuilds
 * exactly the database the writer had. Never edit a shipped migration: add one.
 */
export interface Migration {
  version: number;
  statements: string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)`,
      `CREATE TABLE actors (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        role TEXT,
        parent TEXT,
        parent_id TEXT,
        supervisor_node TEXT NOT NULL,
        state TEXT NOT NULL,
        substate TEXT,
        snapshot TEXT,
        machine_version INTEGER NOT NULL,
        worktree TEXT,
        branch TEXT,
        pty_socket TEXT,
        pty INTEGER,
        pid INTEGER,
        pid_start_time INTEGER,
        host_pid INTEGER,
        host_start_time INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        restart_times TEXT NOT NULL DEFAULT '[]',
        spec TEXT NOT NULL DEFAULT '{}',
        intent TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        destroyed_at INTEGER,
        last_activity_at INTEGER
      )`,
      // One live incarnation per name; tombstones of earlier ones may share it.
      `CREATE UNIQUE INDEX actors_live_name ON actors (name) WHERE state <> 'destroyed'`,
      `CREATE INDEX actors_name_created ON actors (name, created_at)`,
      `CREATE TABLE history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        actor_id TEXT NOT NULL,
        name TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        event TEXT NOT NULL,
        at INTEGER NOT NULL
      )`,
      `CREATE INDEX history_actor ON history (actor_id, seq)`,
      `CREATE TABLE mail (
        id TEXT PRIMARY KEY NOT NULL,
        from_addr TEXT NOT NULL,
        from_id TEXT,
        to_addr TEXT NOT NULL,
        to_id TEXT,
        requested_to TEXT,
        type TEXT NOT NULL,
        subject TEXT,
        body TEXT NOT NULL,
        priority TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        payload TEXT,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        read_at INTEGER
      )`,
      `CREATE INDEX mail_to_id_read ON mail (to_id, read_at)`,
      `CREATE INDEX mail_to_read ON mail (to_addr, read_at)`,
      `CREATE INDEX mail_thread ON mail (thread_id, created_at)`,
    ],
  },
];

/** The version this build of troupe writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Meta key holding the journal sequence number a snapshot contains. */
export const SNAPSHOT_SEQ_KEY = "snapshot_seq";
export const SCHEMA_VERSION_KEY = "schema_version";

/** The statements of the migration to `version`, ending with the version stamp. */
export function migrationStatements(version: number): Statement[] {
  const migration = MIGRATIONS.find((m) => m.version === version);
  if (!migration) throw new Error(`no migration to schema version ${version}`);
  return [
    ...migration.statements.map((sql): Statement => [sql, []]),
    [`INSERT INTO meta (key, value) VALUES ('${SCHEMA_VERSION_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(version)]],
    // PRAGMA takes no parameters; the version is a trusted integer.
    [`PRAGMA user_version = ${Math.trunc(version)}`, []],
  ];
}
