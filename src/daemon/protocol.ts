/**
 * The daemon's wire protocol (DESIGN §9): JSON-RPC 2.0, one JSON object per
 * line, over a Unix socket. Pure (type imports only): the CLI and the daemon
 * share it, and the CLI must stay free of heavy modules.
 *
 * `DaemonMethods` is the contract, written once: it types the server's method
 * table (src/daemon/methods.ts) and the client's `call` (src/client/rpc.ts),
 * so a method missing on either side, or a params or result shape that
 * differs, does not compile. `hello` must come first on a connection;
 * `subscribe` is followed by `event` notifications. `auth` is `{ token }`:
 * an agent's TROUPE_TOKEN; without it the caller is the operator.
 *
 * Bump PROTOCOL_VERSION whenever a method changes meaning or shape in a way an
 * older peer would misread. Adding a method or an optional field is not such a
 * change (unknown fields are ignored on both sides).
 */
import type { BuilderMachineDefinition, BuilderStateDefinition, BuilderTransitionDefinition } from "../machines/definition.js";
import type { AdoptReport, Auth, BuilderScreen, BuilderStatus, DoctorReport, GcReport, HistoryEntry, MailMessage, MailQuery, ReplyRequest, SendRequest, SpawnOptions, SupervisorEvent } from "../shared/contract.js";
import type { SupervisorEventType } from "../shared/vocabulary.js";

export const PROTOCOL_VERSION = 1;

/** Largest frame (one line) either side accepts. */
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;

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

/**
 * When it cannot start, the daemon writes one line to its stderr (the daemon
 * log): this prefix, then a TroupeError as JSON (`{ code, message, details }`).
 * The launcher reads the code (a rival daemon owns the workspace: STORE_LOCKED,
 * with the owner's pid in `details.pid`), never the English of the message.
 */
export const START_FAILURE_PREFIX = "troupe daemon: ";

/** A notification the daemon pushes to a `subscribe`d connection: `{ method: "event", params: { event } }`. */
export const EVENT_NOTIFICATION = "event";

export interface EventNotification {
  jsonrpc: "2.0";
  method: typeof EVENT_NOTIFICATION;
  params: { event: SupervisorEvent };
}

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
  /** The byte transcript (`troupe logs --raw`). */
  path: string;
  exists: boolean;
  /** The text transcript: lines that scrolled off the screen, and the final screen once the agent exited. */
  textPath: string;
  textExists: boolean;
}

/** The statecharts `chart.definition` describes (`troupe chart <machine>`). */
export const CHART_MACHINES = ["builder"] as const;
export type ChartMachine = (typeof CHART_MACHINES)[number];

/**
 * A statechart as plain JSON: the daemon builds it from the XState machine,
 * and the CLI and the visualizer draw it without loading XState (the import
 * is of types only, erased at run time). Written once, beside the machine.
 */
export type ChartDefinition = BuilderMachineDefinition;
export type ChartState = BuilderStateDefinition;
export type ChartTransition = BuilderTransitionDefinition;

export function protocolMismatchMessage(daemon: number, cli: number): string {
  return `daemon speaks protocol ${daemon}, this CLI ${cli}: run \`troupe daemon stop\` then retry`;
}

/** Who calls a mail method: an agent's token, or nobody (the operator). */
interface Authed {
  auth?: Auth;
}

type NoParams = Record<string, never>;

/** Every method of the daemon: its params (as the server accepts them) and its result. */
export interface DaemonMethods {
  hello: { params: { protocol: number; client?: string }; result: HelloResult };
  "daemon.status": { params: NoParams; result: DaemonStatusResult };
  /** Answers, then the daemon exits (pty hosts stay). */
  "daemon.stop": { params: NoParams; result: { stopping: true; pid: number } };
  /** What `troupe status --json` prints. */
  status: { params: { all?: boolean }; result: BuilderStatus[] };
  get: { params: { name: string }; result: BuilderStatus };
  /** The builder's transitions, oldest first. */
  history: { params: { name: string }; result: HistoryEntry[] };
  screen: { params: { name: string }; result: BuilderScreen };
  spawn: { params: SpawnOptions; result: BuilderStatus };
  stop: { params: { name: string }; result: BuilderStatus };
  restart: { params: { name: string }; result: BuilderStatus };
  destroy: { params: { name: string; force?: boolean }; result: BuilderStatus };
  send: { params: SendRequest & Authed; result: MailMessage[] };
  mail: { params: MailQuery & Authed; result: MailMessage[] };
  read: { params: { id: string } & Authed; result: MailMessage };
  reply: { params: { id: string } & ReplyRequest & Authed; result: MailMessage };
  doctor: { params: { fix?: boolean }; result: DoctorReport };
  adopt: { params: NoParams; result: AdoptReport };
  gc: { params: { olderThanMs?: number }; result: GcReport };
  "logs.path": { params: { name: string }; result: LogsInfo };
  "attach.info": { params: { name: string }; result: AttachInfo };
  /** Then `event` notifications: of those builders (all by default), of those types (all by default). */
  subscribe: { params: { names?: string[]; types?: SupervisorEventType[] }; result: { subscribed: true } };
  /** A statechart as JSON (default "builder"). */
  "chart.definition": { params: { machine?: ChartMachine }; result: ChartDefinition };
}

export type DaemonMethod = keyof DaemonMethods;
export type ParamsOf<M extends DaemonMethod> = DaemonMethods[M]["params"];
export type ResultOf<M extends DaemonMethod> = DaemonMethods[M]["result"];
