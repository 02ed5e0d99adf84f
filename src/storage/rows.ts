import { TroupeError } from "../shared/errors.js";
import type { SqlValue } from "./sql.js";
import type { ActorRow, HistoryRow, MailRow } from "./types.js";

/**
 * Mapping between the camelCase rows of the contract and the snake_case
 * columns. Each field names its column and its codec, so the SELECT list, the
 * INSERT and the UPDATE of a patch all come from one table.
 */
type Codec = "text" | "int" | "bool" | "json";
type FieldMap<T> = { [K in keyof T]-?: readonly [column: string, codec: Codec] };

export const ACTOR_FIELDS: FieldMap<ActorRow> = {
  id: ["id", "text"],
  name: ["name", "text"],
  role: ["role", "text"],
  parent: ["parent", "text"],
  parentId: ["parent_id", "text"],
  supervisorNode: ["supervisor_node", "text"],
  state: ["state", "text"],
  substate: ["substate", "text"],
  snapshot: ["snapshot", "json"],
  machineVersion: ["machine_version", "int"],
  worktree: ["worktree", "text"],
  branch: ["branch", "text"],
  ptySocket: ["pty_socket", "text"],
  pty: ["pty", "bool"],
  pid: ["pid", "int"],
  pidStartTime: ["pid_start_time", "int"],
  hostPid: ["host_pid", "int"],
  hostStartTime: ["host_start_time", "int"],
  restarts: ["restarts", "int"],
  restartTimes: ["restart_times", "json"],
  spec: ["spec", "json"],
  intent: ["intent", "json"],
  createdAt: ["created_at", "int"],
  updatedAt: ["updated_at", "int"],
  destroyedAt: ["destroyed_at", "int"],
  lastActivityAt: ["last_activity_at", "int"],
};

export const MAIL_FIELDS: FieldMap<MailRow> = {
  id: ["id", "text"],
  from: ["from_addr", "text"],
  fromId: ["from_id", "text"],
  to: ["to_addr", "text"],
  toId: ["to_id", "text"],
  requestedTo: ["requested_to", "text"],
  type: ["type", "text"],
  subject: ["subject", "text"],
  body: ["body", "text"],
  priority: ["priority", "text"],
  threadId: ["thread_id", "text"],
  payload: ["payload", "json"],
  createdAt: ["created_at", "int"],
  deliveredAt: ["delivered_at", "int"],
  readAt: ["read_at", "int"],
};

const ACTOR_KEYS = Object.keys(ACTOR_FIELDS) as (keyof ActorRow)[];
const MAIL_KEYS = Object.keys(MAIL_FIELDS) as (keyof MailRow)[];

export const ACTOR_COLUMNS = ACTOR_KEYS.map((k) => ACTOR_FIELDS[k][0]).join(", ");
export const MAIL_COLUMNS = MAIL_KEYS.map((k) => MAIL_FIELDS[k][0]).join(", ");
export const HISTORY_COLUMNS = "seq, actor_id, name, from_state, to_state, event, at";

export const INSERT_ACTOR_SQL = `INSERT INTO actors (${ACTOR_COLUMNS}) VALUES (${ACTOR_KEYS.map(() => "?").join(", ")})`;
export const INSERT_MAIL_SQL = `INSERT INTO mail (${MAIL_COLUMNS}) VALUES (${MAIL_KEYS.map(() => "?").join(", ")})`;

export function encode(value: unknown, codec: Codec, field: string): SqlValue {
  if (codec === "json") {
    if (value === undefined) return null;
    return JSON.stringify(value);
  }
  if (value === undefined || value === null) return null;
  switch (codec) {
    case "bool":
      if (typeof value !== "boolean") throw invalid(field, "a boolean", value);
      return value ? 1 : 0;
    case "int":
      if (typeof value !== "number" || !Number.isFinite(value)) throw invalid(field, "a finite number", value);
      return value;
    case "text":
      if (typeof value !== "string") throw invalid(field, "a string", value);
      return value;
  }
}

function decode(value: SqlValue, codec: Codec): unknown {
  if (value === null) return null;
  switch (codec) {
    case "json":
      return JSON.parse(value as string);
    case "bool":
      return value !== 0;
    default:
      return value;
  }
}

function invalid(field: string, expected: string, value: unknown): TroupeError {
  return new TroupeError("INVALID_ARGUMENT", `Field "${field}" must be ${expected} (got ${typeof value}); fix the caller that builds this row.`, { field });
}

export function actorParams(row: ActorRow): SqlValue[] {
  return ACTOR_KEYS.map((k) => encode(row[k], ACTOR_FIELDS[k][1], k));
}

export function mailParams(row: MailRow): SqlValue[] {
  return MAIL_KEYS.map((k) => encode(row[k], MAIL_FIELDS[k][1], k));
}

/** `UPDATE <table> SET …` for the defined keys of `patch`; null when the patch is empty. */
export function updateStatement<T>(table: string, fields: FieldMap<T>, id: string, patch: Partial<T>, allowed?: readonly (keyof T)[]): [string, SqlValue[]] | null {
  const sets: string[] = [];
  const params: SqlValue[] = [];
  for (const key of Object.keys(patch) as (keyof T & string)[]) {
    const value = patch[key];
    if (value === undefined) continue;
    const field = fields[key] as readonly [string, Codec] | undefined;
    if (!field || key === "id" || (allowed && !allowed.includes(key))) {
      throw new TroupeError("INVALID_ARGUMENT", `Cannot update field "${key}" of ${table}; it is not an updatable column.`, { table, field: key });
    }
    sets.push(`${field[0]} = ?`);
    params.push(encode(value, field[1], key));
  }
  if (sets.length === 0) return null;
  params.push(id);
  return [`UPDATE ${table} SET ${sets.join(", ")} WHERE id = ?`, params];
}

export function toActor(values: SqlValue[]): ActorRow {
  const row: Record<string, unknown> = {};
  ACTOR_KEYS.forEach((key, i) => {
    row[key] = decode(values[i] ?? null, ACTOR_FIELDS[key][1]);
  });
  // JSON columns with a non-null contract: an absent value reads as empty.
  row.restartTimes ??= [];
  row.spec ??= {};
  row.restarts ??= 0;
  return row as unknown as ActorRow;
}

export function toMail(values: SqlValue[]): MailRow {
  const row: Record<string, unknown> = {};
  MAIL_KEYS.forEach((key, i) => {
    row[key] = decode(values[i] ?? null, MAIL_FIELDS[key][1]);
  });
  return row as unknown as MailRow;
}

export function toHistory(values: SqlValue[]): HistoryRow {
  const [seq, actorId, name, from, to, event, at] = values;
  return { seq: seq as number, actorId: actorId as string, name: name as string, from: from as string, to: to as string, event: event as string, at: at as number };
}
