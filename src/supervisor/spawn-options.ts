import { TroupeError } from "../shared/errors.js";
import type { BuilderSpec } from "../shared/contract.js";
import type { PtyMode, RestartType, SpawnOptions, Strategy } from "./types.js";

export type { BuilderSpec };

const RESTART_TYPES: readonly RestartType[] = ["permanent", "transient", "temporary"];
const PTY_MODES: readonly PtyMode[] = ["auto", "on", "off"];
const STRATEGIES: readonly Strategy[] = ["one_for_one", "one_for_all", "rest_for_one"];
const POLICY_KEYS = ["maxRestarts", "periodMs", "backoffInitialMs", "backoffMaxMs", "backoffJitter", "stableMs", "stallMs", "zombieMs"];
const MAX_TASK_BYTES = 1024 * 1024;

/** Bad input gets a clear error before anything is created. */
export function validateSpawnOptions(options: SpawnOptions): BuilderSpec {
  const bad = (message: string, details: Record<string, unknown> = {}): never => {
    throw new TroupeError("INVALID_ARGUMENT", message, { name: options?.name, ...details });
  };
  if (typeof options !== "object" || options === null) bad("spawn() takes an options object: { name, cmd | agent, … }.");
  if (options.cmd !== undefined && options.agent !== undefined && options.agent !== "shell") {
    bad("Pass either cmd (a command as an argv array) or agent (a profile name), not both.");
  }
  if (options.cmd !== undefined) {
    if (!Array.isArray(options.cmd) || options.cmd.length === 0 || !options.cmd.every((word) => typeof word === "string")) {
      bad('cmd must be a non-empty array of strings, e.g. ["npm", "test"] (no shell is involved).');
    }
    if (options.cmd[0] === "") bad("cmd[0] (the program) must not be empty.");
  }
  if (options.agent !== undefined && (typeof options.agent !== "string" || options.agent === "")) bad("agent must be a profile name such as \"claude\".");
  if (options.task !== undefined && (typeof options.task !== "string" || Buffer.byteLength(options.task) > MAX_TASK_BYTES)) bad("task must be a string of at most 1 MiB.");
  const restart = options.restart ?? "transient";
  if (!RESTART_TYPES.includes(restart)) bad(`restart must be one of ${RESTART_TYPES.join(", ")}.`, { restart });
  const pty = options.pty ?? "auto";
  if (!PTY_MODES.includes(pty)) bad(`pty must be one of ${PTY_MODES.join(", ")}.`, { pty });
  if (options.strategy !== undefined && !STRATEGIES.includes(options.strategy)) bad(`strategy must be one of ${STRATEGIES.join(", ")}.`, { strategy: options.strategy });
  if (options.base !== undefined && (typeof options.base !== "string" || options.base === "" || options.base.startsWith("-"))) bad("base must be a git ref (a branch, tag or commit).", { base: options.base });
  const policy = options.policy ?? {};
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) bad("policy must be an object such as { maxRestarts: 3, stallMs: 300000 }.");
  for (const [key, value] of Object.entries(policy)) {
    if (!POLICY_KEYS.includes(key)) bad(`policy.${key} is not a policy setting; known: ${POLICY_KEYS.join(", ")}.`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) bad(`policy.${key} must be a number ≥ 0.`);
  }
  const env = options.env ?? {};
  if (typeof env !== "object" || env === null || Array.isArray(env)) bad("env must be an object of NAME → string.");
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || typeof value !== "string") bad(`env entry ${JSON.stringify(key)} must be NAME → string.`);
    if (key.startsWith("TROUPE_")) bad(`env ${key}: TROUPE_* variables are set by troupe itself.`);
  }
  return {
    agent: options.agent ?? "shell",
    cmd: options.cmd ? [...options.cmd] : [],
    ...(options.task !== undefined ? { task: options.task } : {}),
    restart,
    pty,
    ...(options.base !== undefined ? { base: options.base } : {}),
    env: { ...env },
    ...(options.strategy !== undefined ? { strategy: options.strategy } : {}),
    policy: { ...policy },
  };
}
