/**
 * The daemon's wire protocol (DESIGN §9): JSON-RPC 2.0, one JSON object per
 * line, over a Unix socket. This module is pure (no imports): the CLI and the
 * daemon share it, and the CLI must stay free of heavy modules.
 *
 * Methods (params → result; every builder method takes a builder `name`):
 *   hello { protocol, client? }        → HelloResult (must come first on a connection)
 *   daemon.status {}                   → DaemonStatusResult
 *   daemon.stop {}                     → { stopping, pid }, then the daemon exits (pty hosts stay)
 *   status { all? }                    → BuilderStatus[]   (what `troupe status --json` prints)
 *   get { name }                       → BuilderStatus
 *   history { name }                   → [{ from, to, event, at }] (the builder's transitions)
 *   spawn { name, cmd? | agent?, task?, parent?, role?, restart?, pty?, base?, env?, replace?, strategy? } → BuilderStatus
 *   stop | restart { name }            → BuilderStatus
 *   destroy { name, force? }           → BuilderStatus
 *   send { to, body, type?, subject?, priority?, from?, threadId?, payload?, auth? } → MailRow[]
 *   mail { name?, unread?, auth? }     → MailRow[]
 *   read { id, auth? }                 → MailRow
 *   reply { id, body, type?, subject?, priority?, payload?, auth? } → MailRow
 *   doctor { fix? } | adopt {} | gc {} → the supervisor's report
 *   logs.path { name }                 → LogsInfo
 *   attach.info { name }               → AttachInfo
 *   subscribe { names?, types? }       → { subscribed }, then `event` notifications (of those builders, of those EVENT_TYPES)
 *   chart.definition { machine? }      → ChartDefinition of a statechart (CHART_MACHINES; default "builder")
 * `auth` is `{ token }`: an agent's TROUPE_TOKEN; without it the caller is the operator.
 *
 * Bump PROTOCOL_VERSION whenever a method changes meaning or shape in a way an
 * older peer would misread. Adding a method or an optional field is not such a
 * change (unknown fields are ignored on both sides).
 */
export const PROTOCOL_VERSION = 1;

/** Largest frame (one line) either side accepts. */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;

/** DESIGN §11: builder names (and roles) are safe as paths, branch suffixes and addresses. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Standard JSON-RPC codes, plus ours (the -32000 range is for the application). */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** A TroupeError from the supervisor: `data` carries its code, message and details. */
  APPLICATION_ERROR: -32000,
  /** `hello` was not called first, or the versions differ. */
  PROTOCOL_MISMATCH: -32001,
  /** The daemon is shutting down. */
  SHUTTING_DOWN: -32002,
} as const;

/** The `data` of every error reply: a stable code (a TroupeError code or one of the protocol's), a message, details. */
export interface RpcErrorData {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export interface RpcError {
  code: number;
  message: string;
  data: RpcErrorData;
}

export type RpcId = string | number | null;

export interface RpcRequest {
  jsonrpc: "2.0";
  id?: RpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface RpcResponse {
  jsonrpc: "2.0";
  id: RpcId;
  result?: unknown;
  error?: RpcError;
}

/** The daemon writes a line with this prefix to its stderr (the daemon log) when it cannot start. */
export const START_FAILURE_PREFIX = "troupe daemon: ";

/** The kinds of event a `subscribe` may ask for (all of them by default). */
export const EVENT_TYPES = ["transition", "output", "notice", "mail"] as const;

/** A notification the daemon pushes to a `subscribe`d connection: `{ method: "event", params: { event } }`. */
export const EVENT_NOTIFICATION = "event";

export interface HelloResult {
  protocol: number;
  /** The daemon's package version. */
  version: string;
  pid: number;
  workspace: string;
  socket: string;
  node: string;
  startedAt: string;
}

export interface DaemonStatusResult extends HelloResult {
  uptimeMs: number;
  builders: number;
  connections: number;
  logFile: string;
  /** The daemon's own memory, bytes (process.memoryUsage()). */
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}

/** What `attach` needs: the builder's pty host socket. */
export interface AttachInfo {
  name: string;
  id: string;
  state: string;
  socket: string;
  pty: boolean | null;
}

export interface LogsInfo {
  name: string;
  id: string;
  state: string;
  path: string;
  exists: boolean;
}

/** The statecharts `chart.definition` describes (`troupe chart <machine>`). */
export const CHART_MACHINES = ["builder"] as const;
export type ChartMachine = (typeof CHART_MACHINES)[number];

/**
 * A statechart as plain JSON (the daemon builds it from the XState machine;
 * the CLI and the visualizer draw it without loading XState).
 */
export interface ChartDefinition {
  id: string;
  version: number;
  /** Dotted path of the atomic state a new actor starts in. */
  initial: string;
  /** Every state but the root, parents before children, in document order. */
  states: ChartState[];
  transitions: ChartTransition[];
}

export interface ChartState {
  /** Dotted path, e.g. "booting.provisioning". */
  id: string;
  parent: string | null;
  type: "atomic" | "compound" | "final";
  /** Key of the initial child of a compound state. */
  initial: string | null;
  description: string | null;
}

export interface ChartTransition {
  /** The state that declares it (it applies in all its substates); "" is the root. */
  source: string;
  /** null for an eventless (`always`) transition. */
  event: string | null;
  /** Dotted paths; empty for a transition that changes only context. */
  targets: string[];
  guard: { type: string; params?: unknown } | null;
  actions: Array<{ type: string; params?: unknown }>;
}

export function protocolMismatchMessage(daemon: number, cli: number): string {
  return `daemon speaks protocol ${daemon}, this CLI ${cli}: run \`troupe daemon stop\` then retry`;
}
