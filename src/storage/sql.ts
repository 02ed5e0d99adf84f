import initSqlJs from "sql.js";

export type SqlValue = string | number | null;
/** One statement of a journal record: SQL text and its positional parameters. */
export type Statement = [sql: string, params: SqlValue[]];

type SqlJsDatabase = initSqlJs.Database;
type SqlJsStatement = initSqlJs.Statement;

let sqlJs: Promise<initSqlJs.SqlJsStatic> | undefined;

/** The WASM module is compiled once per process (it costs tens of ms). */
export function loadSqlJs(): Promise<initSqlJs.SqlJsStatic> {
  sqlJs ??= initSqlJs();
  return sqlJs;
}

/**
 * A sql.js database with a cache of prepared statements. sql.js 1.16 exports
 * through the backup API and keeps the connection (and so the prepared
 * statements) open; `export()` still clears the cache first, so an older or
 * newer sql.js that frees statements on export cannot leave dangling ones.
 */
export class Db {
  private readonly statements = new Map<string, SqlJsStatement>();
  private inTx = false;

  private constructor(private readonly raw: SqlJsDatabase) {
    this.configure();
  }

  static async open(data?: Uint8Array): Promise<Db> {
    const SQL = await loadSqlJs();
    return new Db(new SQL.Database(data ?? null));
  }

  private configure(): void {
    // The database file lives in Emscripten's MEMFS: durability comes from our
    // journal, so SQLite's own rollback journal only has to support ROLLBACK.
    // One connection owns the file: an exclusive lock spares every transaction
    // the hot-journal and change-counter checks (half the cost of a small write).
    this.raw.exec("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY; PRAGMA locking_mode = EXCLUSIVE;");
  }

  get inTransaction(): boolean {
    return this.inTx;
  }

  // Prepared (not exec'd): parsing BEGIN and COMMIT anew is a third of a small write.
  begin(): void {
    this.run("BEGIN", []);
    this.inTx = true;
  }

  commit(): void {
    this.run("COMMIT", []);
    this.inTx = false;
  }

  rollback(): void {
    this.inTx = false;
    try {
      this.run("ROLLBACK", []);
    } catch {
      // SQLite already rolled back (some errors end the transaction themselves)
    }
  }

  private prepared(sql: string): SqlJsStatement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.raw.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Runs one statement; returns the number of rows it changed. */
  run(sql: string, params: SqlValue[]): number {
    const stmt = this.prepared(sql);
    try {
      stmt.run(params);
    } finally {
      stmt.reset();
    }
    return this.raw.getRowsModified();
  }

  /** Runs a statement of several SQL commands (DDL of migrations). */
  execScript(sql: string): void {
    this.raw.exec(sql);
  }

  all(sql: string, params: SqlValue[] = []): SqlValue[][] {
    const stmt = this.prepared(sql);
    const rows: SqlValue[][] = [];
    try {
      stmt.bind(params);
      while (stmt.step()) rows.push(stmt.get() as SqlValue[]);
    } finally {
      stmt.reset();
    }
    return rows;
  }

  get(sql: string, params: SqlValue[] = []): SqlValue[] | undefined {
    const stmt = this.prepared(sql);
    try {
      stmt.bind(params);
      return stmt.step() ? (stmt.get() as SqlValue[]) : undefined;
    } finally {
      stmt.reset();
    }
  }

  /** The database image. Never called inside a transaction (sql.js refuses). */
  export(): Uint8Array {
    if (this.inTx) throw new Error("export inside a write transaction");
    this.freeStatements();
    const data = this.raw.export();
    this.configure();
    return data;
  }

  close(): void {
    this.freeStatements();
    this.raw.close();
  }

  private freeStatements(): void {
    for (const stmt of this.statements.values()) {
      try {
        stmt.free();
      } catch {
        // already freed by sql.js
      }
    }
    this.statements.clear();
  }
}
