import { join } from "node:path";
import { openStore } from "../storage/index.js";
import { gitTopLevel, gitCommonDir } from "../actors/index.js";
import { createLogger } from "../shared/log.js";
import { TokenAuthority, loadOrCreateSecret } from "../mailbox/index.js";
import { prepareWorkspace, workspaceLayout } from "./layout.js";
import { Supervisor } from "./supervisor.js";
import type { SupervisorOptions, SupervisorTimings } from "./types.js";

export { Supervisor } from "./supervisor.js";
export { BUILTIN_PROFILES, type AgentProfile } from "./profiles.js";
export { validateBuilderName } from "./names.js";
export { workspaceLayout, type WorkspaceLayout } from "./layout.js";
export type * from "./types.js";

export const DEFAULT_TIMINGS: SupervisorTimings = {
  killTimeoutMs: 5_000,
  hostStartTimeoutMs: 15_000,
  collectTimeoutMs: 10 * 60_000,
  idleMs: 1_500,
};

/**
 * Starts an in-process supervisor for the git repository containing
 * `workspace`: takes the workspace lock, restores every builder and
 * reconciles it with the world (adopting live pty hosts).
 */
export async function createSupervisor(options: SupervisorOptions): Promise<Supervisor> {
  const root = await gitTopLevel(options.workspace);
  const layout = workspaceLayout(root);
  prepareWorkspace(layout, await gitCommonDir(root));
  const logger = options.logger ?? createLogger({ destination: join(layout.logsDir, "troupe.log") });
  const store = await openStore({ dir: layout.stateDir, logger });
  const tokens = new TokenAuthority(await loadOrCreateSecret(store, { logger }));
  const supervisor = new Supervisor({
    tokens,
    store,
    layout,
    logger,
    timings: { ...DEFAULT_TIMINGS, ...options.timings },
    policy: { ...options.policy },
    strategy: options.strategy ?? "one_for_one",
    nodePath: options.nodePath ?? process.execPath,
    agentEnv: { ...options.agentEnv },
  });
  try {
    await supervisor.restore();
  } catch (error) {
    await supervisor.close().catch(() => undefined);
    throw error;
  }
  return supervisor;
}
