/**
 * The storage layer: an in-memory sql.js database made durable by a journal
 * with group commit, snapshots and a single-owner lock (DESIGN §6). Nothing
 * outside this folder writes SQL.
 */
export { openStore } from "./open.js";
export { SCHEMA_VERSION } from "./schema.js";
export type * from "./types.js";
