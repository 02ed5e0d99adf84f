/**
 * Typed errors shared by every layer. Each carries a stable `code` (for
 * programs and the CLI's `--json`) and a message that tells the user what to
 * do next. Layers subclass nothing: they pick a code from the union below so
 * that one `instanceof TroupeError` check covers the whole library.
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
  // mail
  | "UNKNOWN_RECIPIENT"
  | "UNAUTHORIZED"
  | "MESSAGE_TOO_LARGE"
  // daemon and CLI
  | "USAGE"
  | "PROTOCOL_MISMATCH"
  | "DAEMON_UNREACHABLE"
  | "DAEMON_NOT_RUNNING"
  | "DAEMON_START_FAILED"
  | "NOT_AVAILABLE"
  | "PORT_IN_USE"
  | "LISTEN_FAILED"
  // faults injected by tests
  | "FAULT_INJECTED";

export class TroupeError extends Error {
  readonly code: TroupeErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: TroupeErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TroupeError";
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: TroupeErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isTroupeError(error: unknown, code?: TroupeErrorCode): error is TroupeError {
  return error instanceof TroupeError && (code === undefined || error.code === code);
}
