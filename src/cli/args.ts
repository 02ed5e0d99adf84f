/**
 * Argument parsing on node:util's parseArgs (no dependency): every command
 * gets `--json` and `--help`; unknown flags, missing or extra positionals and
 * bad values are usage errors (exit 2).
 */
import { parseArgs } from "node:util";
import { UsageError } from "../shared/errors.js";
import { builderNameProblem, roleProblem } from "../shared/vocabulary.js";

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  json: boolean;
  help: boolean;
}

export function parse(argv: string[], options: OptionSpec, usage: string, positionals: { min: number; max: number; names?: string[] }): Parsed {
  let result: ReturnType<typeof parseArgs>;
  try {
    result = parseArgs({
      args: argv,
      options: { ...options, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(cleanParseError(error), usage);
  }
  const values = result.values as Parsed["values"];
  const help = values.help === true;
  if (!help) {
    if (result.positionals.length < positionals.min) {
      const missing = positionals.names?.[result.positionals.length] ?? "argument";
      throw new UsageError(`missing <${missing}>`, usage);
    }
    if (result.positionals.length > positionals.max) {
      throw new UsageError(`unexpected argument ${JSON.stringify(result.positionals[positionals.max])}`, usage);
    }
  }
  return { values, positionals: result.positionals, json: values.json === true, help };
}

function cleanParseError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // parseArgs suggests "To specify an option argument starting with a dash use --foo=-XYZ": keep the first sentence.
  return message.split(". To specify")[0]!.replace(/^Unknown option/, "unknown option").replace(/^Option/, "option");
}

/** A builder name, by the rule of every door (the daemon and the library refuse the same names). */
export function checkName(value: string, what = "name"): string {
  const problem = builderNameProblem(value);
  if (problem) throw new UsageError(`invalid ${what}: ${problem}`);
  return value;
}

export function checkRole(value: string): string {
  const problem = roleProblem(value);
  if (problem) throw new UsageError(problem);
  return value;
}

export function checkChoice<T extends string>(value: string | undefined, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${choices.join(", ")} (got ${JSON.stringify(value)})`);
  return value as T;
}

export function str(value: string | boolean | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}
