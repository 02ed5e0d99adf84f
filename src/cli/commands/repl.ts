import { CliError } from "../errors.js";

export const usage = `Usage: troupe repl

Not available yet in this version of troupe.`;

export async function run(_argv: string[], command: string): Promise<number> {
  throw new CliError("NOT_AVAILABLE", `\`troupe ${command}\` is not available yet in this version`, { command });
}
