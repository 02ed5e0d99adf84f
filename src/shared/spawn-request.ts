/**
 * The one door for a spawn request (DESIGN §14: options normalised once, by
 * the module that owns them). The library's `spawn()`, the daemon's `spawn`
 * method and the CLI all check a request here, so each refuses exactly what
 * the others refuse, with the same message; what comes out is typed and is
 * what the builder's row stores.
 */
import type { BuilderSpec, PolicyOptions, SpawnOptions } from "./contract.js";
import { TroupeError } from "./errors.js";
import { POLICY_KEYS, PTY_MODES, RESTART_TYPES, STRATEGIES, builderNameProblem, isOneOf, roleProblem } from "./vocabulary.js";

/** A spawn request after validation. */
export interface SpawnRequest {
  name: string;
  role: string | null;
  parent: string | null;
  replace: boolean;
  spec: BuilderSpec;
}

const MAX_TASK_BYTES = 1024 * 1024;
const MAX_ARGV_WORDS = 1024;
const MAX_WORD_BYTES = 64 * 1024;
const MAX_ENV_ENTRIES = 256;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A builder name, or INVALID_NAME with the rule in words. */
export function validateBuilderName(name: unknown): string {
  const problem = builderNameProblem(name);
  if (problem) throw new TroupeError("INVALID_NAME", capitalise(problem) + ".", { name: typeof name === "string" ? name.slice(0, 80) : name });
  return name as string;
}

export function validateRole(role: unknown): string | null {
  if (role === undefined || role === null) return null;
  const problem = roleProblem(role);
  if (problem) throw new TroupeError("INVALID_ARGUMENT", capitalise(problem) + ".", { role });
  return role as string;
}

/** Bad input gets a clear error before anything is created. */
export function parseSpawnRequest(options: SpawnOptions): SpawnRequest {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TroupeError("INVALID_ARGUMENT", "spawn() takes an options object: { name, cmd | agent, … }.");
  }
  const name = validateBuilderName(options.name);
  const bad = (message: string, details: Record<string, unknown> = {}): never => {
    throw new TroupeError("INVALID_ARGUMENT", message, { name, ...details });
  };
  if (options.cmd !== undefined && options.agent !== undefined && options.agent !== "shell") {
    bad("Pass either cmd (a command as an argv array) or agent (a profile name), not both.");
  }
  if (options.cmd !== undefined) {
    if (!Array.isArray(options.cmd) || options.cmd.length === 0 || !options.cmd.every((word) => typeof word === "string")) {
      bad('cmd must be a non-empty array of strings, e.g. ["npm", "test"] (no shell is involved).');
    }
    if (options.cmd.length > MAX_ARGV_WORDS || options.cmd.some((word) => Buffer.byteLength(word) > MAX_WORD_BYTES)) bad(`cmd must have at most ${MAX_ARGV_WORDS} words of at most 64 KiB each.`);
    if (options.cmd[0] === "") bad("cmd[0] (the program) must not be empty.");
  }
  if (options.agent !== undefined && (typeof options.agent !== "string" || options.agent === "" || options.agent.length > 128)) bad('agent must be a profile name such as "claude".');
  if (options.task !== undefined && (typeof options.task !== "string" || Buffer.byteLength(options.task) > MAX_TASK_BYTES)) bad("task must be a string of at most 1 MiB.");
  const restart = options.restart ?? "transient";
  if (!isOneOf(RESTART_TYPES, restart)) bad(`restart must be one of ${RESTART_TYPES.join(", ")}.`, { restart });
  const pty = options.pty ?? "auto";
  if (!isOneOf(PTY_MODES, pty)) bad(`pty must be one of ${PTY_MODES.join(", ")}.`, { pty });
  if (options.strategy !== undefined && !isOneOf(STRATEGIES, options.strategy)) bad(`strategy must be one of ${STRATEGIES.join(", ")}.`, { strategy: options.strategy });
  if (options.base !== undefined && (typeof options.base !== "string" || options.base === "" || options.base.startsWith("-") || options.base.length > 1024)) bad("base must be a git ref (a branch, tag or commit).", { base: options.base });
  if (options.replace !== undefined && typeof options.replace !== "boolean") bad("replace must be true or false.");
  const policy = parsePolicy(options.policy, bad);
  const env = options.env ?? {};
  if (typeof env !== "object" || env === null || Array.isArray(env)) bad("env must be an object of NAME → string.");
  const entries = Object.entries(env);
  if (entries.length > MAX_ENV_ENTRIES) bad(`env has more than ${MAX_ENV_ENTRIES} entries.`);
  for (const [key, value] of entries) {
    if (!ENV_NAME.test(key) || typeof value !== "string" || Buffer.byteLength(value) > MAX_WORD_BYTES) bad(`env entry ${JSON.stringify(key.slice(0, 64))} must be NAME → string (at most 64 KiB).`);
    if (key.startsWith("TROUPE_")) bad(`env ${key}: TROUPE_* variables are set by troupe itself.`);
  }
  return {
    name,
    role: validateRole(options.role),
    parent: options.parent === undefined || options.parent === null ? null : validateBuilderName(options.parent),
    replace: options.replace === true,
    spec: {
      agent: options.agent ?? "shell",
      cmd: options.cmd ? [...options.cmd] : [],
      ...(options.task !== undefined ? { task: options.task } : {}),
      restart,
      pty,
      ...(options.base !== undefined ? { base: options.base } : {}),
      env: { ...env },
      ...(options.strategy !== undefined ? { strategy: options.strategy } : {}),
      policy,
    },
  };
}

function parsePolicy(policy: unknown, bad: (message: string) => never): PolicyOptions {
  if (policy === undefined) return {};
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) bad("policy must be an object such as { maxRestarts: 3, stallMs: 300000 }.");
  const out: PolicyOptions = {};
  for (const [key, value] of Object.entries(policy as object)) {
    if (!isOneOf(POLICY_KEYS, key)) bad(`policy.${key.slice(0, 64)} is not a policy setting; known: ${POLICY_KEYS.join(", ")}.`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) bad(`policy.${key} must be a number ≥ 0.`);
    out[key as keyof PolicyOptions] = value as number;
  }
  return out;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
