/** Why a host could not start its agent: reported to the launcher as a structured error. */
export type FailCode = "PTY_UNAVAILABLE" | "SPAWN_FAILED" | "INVALID_ARGUMENT";

export class HostFailure extends Error {
  constructor(
    readonly code: FailCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
