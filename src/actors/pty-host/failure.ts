/**
 * Why a host could not start its agent. It is an ordinary TroupeError, since
 * the launcher rethrows it as one anyway: it crosses fd 3 as the `error` of a
 * ReadyMessage (code, message, details) and `launchPtyHost` turns it back into
 * a TroupeError with the same code and the details merged into its own.
 */
import { TroupeError, isTroupeError } from "../../shared/errors.js";
import type { ReadyMessage } from "./protocol.js";

/** The codes a host reports at start (the ReadyMessage's error codes). */
export type HostFailCode = Extract<ReadyMessage, { ok: false }>["error"]["code"];

export function hostFailure(code: HostFailCode, message: string, details: Record<string, unknown> = {}): TroupeError {
  return new TroupeError(code, message, details);
}

/** The ReadyMessage that reports `error`; an error that is not one of ours is a failed spawn (a bad spec if it did not parse). */
export function failureReport(error: unknown): Extract<ReadyMessage, { ok: false }> {
  if (isTroupeError(error) && isHostFailCode(error.code)) return { ok: false, error: { code: error.code, message: error.message, details: error.details } };
  const message = `The pty host could not start: ${error instanceof Error ? error.message : String(error)}`;
  return { ok: false, error: { code: error instanceof SyntaxError ? "INVALID_ARGUMENT" : "SPAWN_FAILED", message, details: {} } };
}

function isHostFailCode(code: string): code is HostFailCode {
  return code === "PTY_UNAVAILABLE" || code === "SPAWN_FAILED" || code === "INVALID_ARGUMENT";
}
