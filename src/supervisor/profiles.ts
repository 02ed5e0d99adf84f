import { readFileSync } from "node:fs";
import { TroupeError } from "../shared/errors.js";

/**
 * An agent profile says how to run one kind of agent CLI: its command, the
 * arguments that resume its session after a restart, how the task reaches it,
 * and whether mail is typed into its terminal or only kept in its inbox.
 */
export interface AgentProfile {
  name: string;
  /** argv; empty for `shell`, whose command comes from `spawn({ cmd })`. */
  command: string[];
  /** Appended to the command when the builder is restarted (resume the agent's session). */
  resumeArgs: string[];
  /** How `task` reaches the agent: as the last argument, typed into the terminal, or only in TROUPE_TASK. */
  task: "arg" | "pty" | "env";
  /** Mail delivery: typed into the terminal (bracketed paste + Enter) and kept in the inbox, or inbox only. */
  deliver: "pty" | "inbox";
  env: Record<string, string>;
}

export const BUILTIN_PROFILES: Readonly<Record<string, AgentProfile>> = Object.freeze({
  shell: { name: "shell", command: [], resumeArgs: [], task: "env", deliver: "pty", env: {} },
  claude: { name: "claude", command: ["claude"], resumeArgs: ["--continue"], task: "arg", deliver: "pty", env: {} },
  codex: { name: "codex", command: ["codex"], resumeArgs: ["resume", "--last"], task: "arg", deliver: "pty", env: {} },
  aider: { name: "aider", command: ["aider"], resumeArgs: ["--restore-chat-history"], task: "pty", deliver: "pty", env: {} },
});

/** Reads user profiles from `.troupe/config.json` (`{ "profiles": { name: {...} } }`) over the built-ins. */
export function loadProfiles(configFile: string): Record<string, AgentProfile> {
  let raw: string;
  try {
    raw = readFileSync(configFile, "utf8");
  } catch {
    return { ...BUILTIN_PROFILES };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new TroupeError("INVALID_ARGUMENT", `${configFile} is not valid JSON (${(error as Error).message}); fix or remove it.`, { configFile });
  }
  const profiles: Record<string, AgentProfile> = { ...BUILTIN_PROFILES };
  const user = (parsed as { profiles?: unknown }).profiles;
  if (user === undefined) return profiles;
  if (typeof user !== "object" || user === null || Array.isArray(user)) {
    throw new TroupeError("INVALID_ARGUMENT", `${configFile}: "profiles" must be an object of profile name → { command, resumeArgs?, task?, deliver?, env? }.`, { configFile });
  }
  for (const [name, value] of Object.entries(user as Record<string, unknown>)) {
    profiles[name] = parseProfile(name, value, configFile);
  }
  return profiles;
}

function parseProfile(name: string, value: unknown, configFile: string): AgentProfile {
  const fail = (what: string): never => {
    throw new TroupeError("INVALID_ARGUMENT", `${configFile}: profile "${name}": ${what}.`, { configFile, profile: name });
  };
  if (typeof value !== "object" || value === null) fail("must be an object");
  const v = value as Record<string, unknown>;
  const strings = (x: unknown, field: string): string[] => {
    if (x === undefined) return [];
    if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) fail(`"${field}" must be an array of strings`);
    return x as string[];
  };
  const command = strings(v.command, "command");
  if (command.length === 0) fail(`"command" must name the program, e.g. ["my-agent", "--flag"]`);
  const task = v.task ?? "arg";
  if (task !== "arg" && task !== "pty" && task !== "env") fail(`"task" must be "arg", "pty" or "env"`);
  const deliver = v.deliver ?? "pty";
  if (deliver !== "pty" && deliver !== "inbox") fail(`"deliver" must be "pty" or "inbox"`);
  const env = v.env ?? {};
  if (typeof env !== "object" || env === null || !Object.values(env).every((s) => typeof s === "string")) fail(`"env" must map names to strings`);
  return { name, command, resumeArgs: strings(v.resumeArgs, "resumeArgs"), task: task as AgentProfile["task"], deliver: deliver as AgentProfile["deliver"], env: env as Record<string, string> };
}

export function resolveProfile(profiles: Record<string, AgentProfile>, name: string): AgentProfile {
  const profile = profiles[name];
  if (!profile) {
    throw new TroupeError("UNKNOWN_PROFILE", `Unknown agent profile "${name}". Known profiles: ${Object.keys(profiles).sort().join(", ")}. Add your own under "profiles" in .troupe/config.json, or pass a command instead.`, { profile: name });
  }
  return profile;
}

/** The argv of one start of an agent: first start, or a restart that resumes its session. */
export function agentArgv(profile: AgentProfile, cmd: string[] | undefined, task: string | undefined, resume: boolean): string[] {
  const base = profile.command.length > 0 ? [...profile.command, ...(cmd ?? [])] : [...(cmd ?? [])];
  if (resume) return [...base, ...profile.resumeArgs];
  if (task !== undefined && profile.task === "arg") return [...base, task];
  return base;
}
