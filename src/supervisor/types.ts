import type { BuilderContext, LifeState as ChartLifeState, RestartType as ChartRestartType } from "../machines/builder.js";
import type { LifeState, PolicyOptions, RestartType, Strategy } from "../shared/contract.js";

export type { BuilderSpec, BuilderStatus, PolicyOptions, PtyMode, RestartType, SpawnOptions, Strategy, SupervisorEvent } from "../shared/contract.js";

// src/machines imports nothing of ours, so it spells its unions itself; these
// fail to compile the day they stop agreeing with the vocabulary.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const agree: [Same<ChartRestartType, RestartType>, Same<ChartLifeState, LifeState>, Same<keyof BuilderContext["policy"], keyof Required<PolicyOptions>>] = [true, true, true];
void agree;

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
