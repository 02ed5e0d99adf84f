/**
 * troupe's vocabulary, written once: the rule for names and every enum that
 * crosses a boundary (CLI flags, wire params, library options, rows). Builtins
 * only, so the CLI, the daemon and the supervisor all load this one module.
 * (`src/machines` keeps its own unions because it imports nothing of ours;
 * the supervisor checks at compile time that they agree with these.)
 */

/** DESIGN §11: names and roles are safe as path segments, branch suffixes and addresses. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** What the name rule says in words, for error messages. */
export const NAME_RULE = "1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";

/** Addresses with a meaning of their own can never be builder names. */
export const RESERVED_NAMES: readonly string[] = ["operator", "parent", "root"];

/**
 * Why `name` cannot be a builder name, or null when it can. The one rule for
 * every door (CLI, wire, library): a name also becomes the git branch
 * `troupe/<name>`, so it must be a valid ref suffix too.
 */
export function builderNameProblem(name: unknown): string | null {
  if (typeof name !== "string" || name.length === 0) return `a builder needs a name: ${NAME_RULE}`;
  if (!NAME_PATTERN.test(name)) return `invalid builder name ${JSON.stringify(name.slice(0, 80))}: use ${NAME_RULE} (for example "fix-login")`;
  if (name.includes("..") || name.endsWith(".") || name.endsWith(".lock")) {
    return `invalid builder name ${JSON.stringify(name)}: it must not contain "..", nor end with "." or ".lock" (it becomes the git branch troupe/${name})`;
  }
  if (RESERVED_NAMES.includes(name)) return `"${name}" is a reserved address; pick another builder name`;
  return null;
}

/** Why `role` cannot be a role, or null when it can (roles follow the name pattern). */
export function roleProblem(role: unknown): string | null {
  if (typeof role === "string" && NAME_PATTERN.test(role)) return null;
  return `invalid role ${JSON.stringify(typeof role === "string" ? role.slice(0, 80) : role)}: use the same characters as a name (a-z, 0-9, '.', '_', '-')`;
}

export const LIFE_STATES = ["booting", "working", "completed", "zombie", "destroying", "destroyed"] as const;
/** The top-level life states of a builder (DESIGN §3). */
export type LifeState = (typeof LIFE_STATES)[number];

export const RESTART_TYPES = ["permanent", "transient", "temporary"] as const;
/** DESIGN §4: when a builder is restarted after its agent exits. */
export type RestartType = (typeof RESTART_TYPES)[number];

export const STRATEGIES = ["one_for_one", "one_for_all", "rest_for_one"] as const;
/** DESIGN §4: what a supervisor node does to siblings when one of them restarts. */
export type Strategy = (typeof STRATEGIES)[number];

export const PTY_MODES = ["auto", "on", "off"] as const;
/** A real terminal (on), pipes (off), or a terminal with a visible fallback to pipes (auto). */
export type PtyMode = (typeof PTY_MODES)[number];

export const PRIORITIES = ["low", "normal", "high", "urgent"] as const;
/** Mail priority: urgent and high are delivered first. */
export type Priority = (typeof PRIORITIES)[number];

/** The kinds of event a `subscribe` may ask for. */
export const EVENT_TYPES = ["transition", "output", "notice", "mail"] as const;
export type SupervisorEventType = (typeof EVENT_TYPES)[number];

/** The settings of a restart policy (DESIGN §4), each a number ≥ 0. */
export const POLICY_KEYS = ["maxRestarts", "periodMs", "backoffInitialMs", "backoffMaxMs", "backoffJitter", "stableMs", "stallMs", "zombieMs"] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

/** Whether `value` is one of `values` (and narrows it). */
export function isOneOf<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === "string" && (values as readonly string[]).includes(value);
}
