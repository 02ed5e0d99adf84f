/**
 * Errors of the CLI. `exitCode` follows DESIGN §9: 1 for a failure, 2 for a
 * usage error. A daemon's error reply becomes a CliError carrying the
 * daemon's code (a TroupeError code) and message.
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = "CliError";
  }

  toJSON(): { code: string; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export class UsageError extends CliError {
  constructor(message: string, readonly usage?: string) {
    super("USAGE", message, {}, 2);
    this.name = "UsageError";
  }
}
