import type { LifeState, MailRow } from "../storage/types.js";

export type RestartType = "permanent" | "transient" | "temporary";
export type Strategy = "one_for_one" | "one_for_all" | "rest_for_one";
export type PtyMode = "auto" | "on" | "off";

/** `spawn()` options (DESIGN §10). `cmd` and `agent` are alternatives. */
export interface SpawnOptions {
  name: string;
  cmd?: string[];
  agent?: string;
  task?: string;
  parent?: string;
  role?: string;
  restart?: RestartType;
  pty?: PtyMode;
  base?: string;
  env?: Record<string, string>;
  /** Tear down a live builder of the same name first (DESIGN §7, invariant C). */
  replace?: boolean;
  /** Strategy of the supervisor node this builder heads (for builders spawned with it as parent). */
  strategy?: Strategy;
  /** Restart/stall policy of this builder, over the supervisor's. */
  policy?: PolicyOptions;
}

/** One builder as `status()` and `troupe status --json` show it (DESIGN §9). */
export interface BuilderStatus {
  name: string;
  id: string;
  role: string | null;
  parent: string | null;
  state: LifeState;
  substate: string | null;
  pid: number | null;
  pty: boolean | null;
  worktree: string | null;
  branch: string | null;
  restarts: number;
  createdAt: string;
  lastActivityAt: string | null;
  restartType: RestartType;
  agent: string;
  command: string[];
  reason: string | null;
  exit: { code: number | null; signal: string | null; at: string } | null;
  ptyError: string | null;
  destroyedAt: string | null;
}

export type SupervisorEvent =
  | { type: "transition"; name: string; id: string; from: string; to: string; event: string; at: number }
  | { type: "output"; name: string; id: string; data: string }
  | { type: "notice"; kind: "worker_died" | "contract_violation"; name: string; id: string; to: string; reason: string; at: number }
  | { type: "mail"; message: MailRow };

export interface SupervisorTimings {
  /** SIGTERM → SIGKILL grace when stopping an agent (default 5 s). */
  killTimeoutMs: number;
  /** How long a pty host may take to confirm its agent started (default 15 s). */
  hostStartTimeoutMs: number;
  /** How long a pty host keeps an exit status nobody collects (default 10 min). */
  collectTimeoutMs: number;
  /** Mail is typed into a terminal only after it has been quiet this long (default 1.5 s). */
  idleMs: number;
}

/** Restart policy overrides; see `DEFAULT_POLICY` in src/machines. */
export interface PolicyOptions {
  maxRestarts?: number;
  periodMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  backoffJitter?: number;
  stableMs?: number;
  stallMs?: number;
  zombieMs?: number;
}

export interface SupervisorOptions {
  /** Any directory inside the git repository; the workspace is its main working tree. */
  workspace: string;
  /** Strategy of the root supervisor node (default one_for_one). */
  strategy?: Strategy;
  policy?: PolicyOptions;
  timings?: Partial<SupervisorTimings>;
  /** A pino logger; by default JSON lines go to `.troupe/logs/troupe.log`. */
  logger?: import("pino").Logger;
  /** Node binary for pty hosts (default: this process's). */
  nodePath?: string;
  /** Extra environment for every agent (the daemon sets TROUPE_SOCKET here). */
  agentEnv?: Record<string, string>;
}
