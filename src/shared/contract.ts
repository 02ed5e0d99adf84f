/**
 * The library's contract, written once (DESIGN §10): the shapes that cross
 * every boundary and the `TroupeApi` interface that both the in-process
 * `Supervisor` and the daemon's `connect()` client implement, checked by the
 * compiler. Types only, so the CLI loads nothing by importing it.
 */
import type { LifeState, PolicyKey, Priority, PtyMode, RestartType, Strategy } from "./vocabulary.js";

export type { LifeState, Priority, PtyMode, RestartType, Strategy } from "./vocabulary.js";

/** Restart policy overrides (DESIGN §4); see `DEFAULT_POLICY` in src/machines. */
export type PolicyOptions = Partial<Record<PolicyKey, number>>;

/** `spawn()` options (DESIGN §10). `cmd` and `agent` are alternatives. */
export interface SpawnOptions {
  name: string;
  cmd?: string[];
  agent?: string;
  task?: string;
  parent?: string;
  role?: string;
  restart?: RestartType;
  pty?: PtyMode;
  base?: string;
  env?: Record<string, string>;
  /** Tear down a live builder of the same name first (DESIGN §7, invariant C). */
  replace?: boolean;
  /** Strategy of the supervisor node this builder heads (for builders spawned with it as parent). */
  strategy?: Strategy;
  /** Restart/stall policy of this builder, over the supervisor's. */
  policy?: PolicyOptions;
}

/**
 * A spawn request after validation (DESIGN §14: checked once, at the door),
 * as the builder's row stores it. Everything the runtime needs to start the
 * agent again, in any later supervisor.
 */
export interface BuilderSpec {
  agent: string;
  cmd: string[];
  task?: string;
  restart: RestartType;
  pty: PtyMode;
  base?: string;
  /** The commit `base` resolved to when the builder was spawned. */
  baseCommit?: string;
  env: Record<string, string>;
  strategy?: Strategy;
  /** The builder's policy: the supervisor's with the spawn's overrides on top. */
  policy: PolicyOptions;
  /** The branch existed before the spawn (so a rolled-back spawn must not delete it). */
  branchExisted?: boolean;
  /** Registered by `adopt` around a live pty host whose row was lost. */
  adopted?: boolean;
  /** Why the last start ran on pipes instead of a PTY (pty: "auto"), or null. */
  ptyError?: string | null;
}

/** One builder as `status()` and `troupe status --json` show it (DESIGN §9). */
export interface BuilderStatus {
  name: string;
  id: string;
  role: string | null;
  parent: string | null;
  state: LifeState;
  substate: string | null;
  pid: number | null;
  pty: boolean | null;
  worktree: string | null;
  branch: string | null;
  restarts: number;
  createdAt: string;
  lastActivityAt: string | null;
  restartType: RestartType;
  agent: string;
  command: string[];
  reason: string | null;
  exit: { code: number | null; signal: string | null; at: string } | null;
  ptyError: string | null;
  destroyedAt: string | null;
}

/** A builder's terminal as its screen shows it now (`troupe screen`): plain text, no escapes. */
export interface BuilderScreen {
  name: string;
  id: string;
  cols: number;
  rows: number;
  /** One string per row, trailing blanks trimmed. */
  lines: string[];
  /** Zero-based, within the visible rows. */
  cursor: { x: number; y: number; visible: boolean };
  /** The last title the agent set (OSC 0/2), "" if none. */
  title: string;
  /** The agent drew on the alternate screen (a full-screen program). */
  alternate: boolean;
}

/** One transition of a builder, oldest first (what `history(name)` resolves to). */
export interface HistoryEntry {
  from: string;
  to: string;
  event: string;
  /** ISO time. */
  at: string;
}

/** One message (DESIGN §8). Times are epoch milliseconds. */
export interface MailMessage {
  id: string;
  /** Address of the sender: a builder name or "operator". */
  from: string;
  /** Incarnation id of the sending builder; null for the operator. */
  fromId: string | null;
  /** Address of the recipient as resolved: a builder name or "operator". */
  to: string;
  /** Incarnation id of the recipient builder; null for the operator. */
  toId: string | null;
  /** The address the sender wrote, when it differs from `to` (e.g. "parent", "@all"). */
  requestedTo: string | null;
  type: string;
  subject: string | null;
  body: string;
  priority: Priority;
  threadId: string;
  payload: unknown;
  createdAt: number;
  deliveredAt: number | null;
  readAt: number | null;
}

export interface SendRequest {
  /** A builder name, `operator`, `parent`, `@children`, `@all` or `@role:<role>`. */
  to: string;
  body: string;
  /** status | question | result | error | dispatch | escalation | worker_done | worker_died | x-<custom> (default "status"). */
  type?: string;
  subject?: string;
  /** Default "normal". */
  priority?: Priority;
  /** Only the operator may set it (to a builder name or "operator"). */
  from?: string;
  /** Join an existing thread; a new one is started when absent. */
  threadId?: string;
  /** Any JSON-serialisable value, at most 64 KiB as JSON. */
  payload?: unknown;
}

export interface ReplyRequest {
  body: string;
  type?: string;
  /** Default: "Re: <subject of the original>" when it had one. */
  subject?: string;
  priority?: Priority;
  payload?: unknown;
}

export interface MailQuery {
  /** Whose inbox: a builder name, or the operator's when omitted. */
  name?: string;
  unread?: boolean;
}

/** Who calls: an agent's `TROUPE_TOKEN`; without one the caller is the operator. */
export interface Auth {
  token?: string;
}

export type SupervisorEvent =
  | { type: "transition"; name: string; id: string; from: string; to: string; event: string; at: number }
  | { type: "output"; name: string; id: string; data: string }
  | { type: "notice"; kind: "worker_died" | "contract_violation"; name: string; id: string; to: string; reason: string; at: number }
  | { type: "mail"; message: MailMessage };

export type FindingKind =
  | "orphan-host" // a pty host serving a builder with no row
  | "orphan-process" // an agent process with no live row (or a second agent of one)
  | "orphan-worktree" // a worktree directory (or a registered worktree) no live row owns
  | "orphan-branch" // a troupe/* branch no live row owns
  | "stale-socket" // a socket file nobody answers on
  | "stale-lock" // lock files of an owner that died while taking the lock
  | "husk-host" // a host holding the exit status of an agent whose builder moved on
  | "finished-with-live-host" // completed/zombie row whose agent still runs
  | "lost-process" // working row whose host and agent are gone
  | "missing-worktree" // live row whose worktree directory is gone
  | "unfinished-teardown" // a destroying row
  | "tombstone-leftover"; // something is left of a destroyed builder

export interface DoctorFinding {
  kind: FindingKind;
  name: string | null;
  id: string | null;
  detail: string;
  fix: string;
}

export interface DoctorReport {
  findings: DoctorFinding[];
  /** With `fix`: what was repaired, and what a second look still finds (empty when all is well). */
  fixed?: DoctorFinding[];
  failed?: Array<DoctorFinding & { error: string }>;
}

export interface AdoptReport {
  adopted: BuilderStatus[];
  skipped: Array<{ name: string; id: string; reason: string }>;
}

export interface GcReport {
  removed: Array<{ name: string; id: string }>;
}

/**
 * What a program can do with a workspace, in process (`createSupervisor`) or
 * through its daemon (`connect`). One interface, so the two cannot drift.
 */
export interface TroupeApi {
  /** The main working tree of the repository. */
  readonly workspace: string;
  spawn(options: SpawnOptions): Promise<BuilderStatus>;
  status(options?: { all?: boolean }): Promise<BuilderStatus[]>;
  get(name: string): Promise<BuilderStatus>;
  history(name: string): Promise<HistoryEntry[]>;
  /** What the builder's terminal shows now, as text. */
  screen(name: string): Promise<BuilderScreen>;
  stop(name: string): Promise<BuilderStatus>;
  restart(name: string): Promise<BuilderStatus>;
  destroy(name: string, options?: { force?: boolean }): Promise<BuilderStatus>;
  send(request: SendRequest, auth?: Auth): Promise<MailMessage[]>;
  mail(request?: MailQuery, auth?: Auth): Promise<MailMessage[]>;
  read(id: string, auth?: Auth): Promise<MailMessage>;
  reply(id: string, request: ReplyRequest, auth?: Auth): Promise<MailMessage>;
  doctor(options?: { fix?: boolean }): Promise<DoctorReport>;
  adopt(): Promise<AdoptReport>;
  gc(options?: { olderThanMs?: number }): Promise<GcReport>;
  subscribe(listener: (event: SupervisorEvent) => void): () => void;
  close(): Promise<void>;
}
