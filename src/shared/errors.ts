/**
 * The one error class of troupe. Each error carries a stable `code` (for
 * programs and the CLI's `--json`) and a message that tells the user what to
 * do next. Layers pick a code from the union below rather than subclassing,
 * so one `isTroupeError` check covers the library, the daemon's replies and
 * the CLI; `UsageError` only adds the CLI's exit status 2.
 *
 * Identity is a registered symbol, not `instanceof` or a `name` string: two
 * copies of this module (a library and the daemon client of another version,
 * or a test importing src/ beside dist/) still recognise each other's errors.
 */
export type TroupeErrorCode =
  // storage
  | "STORE_LOCKED"
  | "STORE_NEWER_SCHEMA"
  | "STORE_CORRUPT_SNAPSHOT"
  | "STORE_CLOSED"
  | "STORE_IO"
  // input validation
  | "INVALID_NAME"
  | "INVALID_ARGUMENT"
  | "UNKNOWN_PROFILE"
  | "NOT_A_GIT_REPO"
  // builders
  | "NOT_FOUND"
  | "NAME_TAKEN"
  | "DESTROYED"
  | "ILLEGAL_TRANSITION"
  | "WORKTREE_DIRTY"
  | "SPAWN_FAILED"
  | "PTY_UNAVAILABLE"
  | "HOST_UNREACHABLE"
  | "SUPERVISOR_CLOSED"
  // pty hosts
  | "HOST_FAILED"
  // mail
  | "UNKNOWN_RECIPIENT"
  | "UNAUTHORIZED"
  | "MESSAGE_TOO_LARGE"
  // the wire (JSON-RPC) and the daemon
  | "PARSE_ERROR"
  | "INVALID_REQUEST"
  | "METHOD_NOT_FOUND"
  | "INVALID_PARAMS"
  | "FRAME_TOO_LARGE"
  | "PROTOCOL_ERROR"
  | "PROTOCOL_MISMATCH"
  | "SHUTTING_DOWN"
  | "INTERNAL"
  | "DAEMON_UNREACHABLE"
  | "DAEMON_NOT_RUNNING"
  | "DAEMON_START_FAILED"
  | "NOT_AVAILABLE"
  // CLI
  | "USAGE"
  | "WRITE_FAILED"
  | "DEMO_FAILED"
  | "PORT_IN_USE"
  | "LISTEN_FAILED"
  // faults injected by tests
  | "FAULT_INJECTED";

const TROUPE_ERROR = Symbol.for("troupe.error");

export interface TroupeErrorJSON {
  code: TroupeErrorCode;
  message: string;
  details: Record<string, unknown>;
}

export class TroupeError extends Error {
  readonly code: TroupeErrorCode;
  readonly details: Record<string, unknown>;
  /** The CLI's exit status for this error (DESIGN §9): 1 failure, 2 usage. */
  readonly exitCode: 1 | 2 = 1;
  readonly [TROUPE_ERROR] = true;

  constructor(code: TroupeErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TroupeError";
    this.code = code;
    this.details = details;
  }

  /** A TroupeError from its JSON form (a daemon's error reply), its code kept as sent. */
  static fromJSON(data: { code: string; message: string; details?: Record<string, unknown> }, options?: { cause?: unknown }): TroupeError {
    return new TroupeError(data.code as TroupeErrorCode, data.message, data.details ?? {}, options);
  }

  toJSON(): TroupeErrorJSON {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** A command line that cannot be run as written (exit status 2); `usage` is the command's usage line. */
export class UsageError extends TroupeError {
  override readonly exitCode = 2 as const;

  constructor(message: string, readonly usage?: string) {
    super("USAGE", message);
    this.name = "UsageError";
  }
}

export function isTroupeError(error: unknown, code?: TroupeErrorCode): error is TroupeError {
  return typeof error === "object" && error !== null && (error as { [TROUPE_ERROR]?: unknown })[TROUPE_ERROR] === true && (code === undefined || (error as TroupeError).code === code);
}

/** An error's message for a log line or a reason: `CODE: message` for ours. */
export function errorMessage(error: unknown): string {
  return isTroupeError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
}
