import { openStore } from "../storage/index.js";
import { gitTopLevel, gitCommonDir } from "../actors/index.js";
import { createLogger } from "./log.js";
import { TokenAuthority, loadOrCreateSecret } from "../mailbox/index.js";
import { policyProblems, resolvePolicy } from "../machines/builder.js";
import { TroupeError } from "../shared/errors.js";
import { STRATEGIES, isOneOf } from "../shared/vocabulary.js";
import { prepareWorkspace, workspaceLayout, writeAgentShim } from "./layout.js";
import { Supervisor } from "./supervisor.js";
import type { SupervisorOptions, SupervisorTimings } from "./types.js";

export { Supervisor } from "./supervisor.js";
export { BUILTIN_PROFILES, type AgentProfile } from "./profiles.js";
export { validateBuilderName } from "../shared/spawn-request.js";
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
  validateSupervisorOptions(options);
  const root = await gitTopLevel(options.workspace);
  const layout = workspaceLayout(root);
  prepareWorkspace(layout, await gitCommonDir(root));
  writeAgentShim(layout, options.nodePath ?? process.execPath);
  const logger = options.logger ?? createLogger({ destination: layout.supervisorLogFile });
  const store = await openStore({ dir: layout.stateDir, logger });
  let supervisor: Supervisor | undefined;
  try {
    const tokens = new TokenAuthority(await loadOrCreateSecret(store, { logger }));
    supervisor = new Supervisor({
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
    await supervisor.restore();
  } catch (error) {
    // Whatever failed after the lock was taken must not keep the workspace locked.
    await (supervisor ? supervisor.close() : store.close()).catch(() => undefined);
    throw error;
  }
  return supervisor;
}

/** Bad options are refused before anything is created or locked. */
function validateSupervisorOptions(options: SupervisorOptions): void {
  if (typeof options !== "object" || options === null || typeof options.workspace !== "string" || options.workspace === "") {
    throw new TroupeError("INVALID_ARGUMENT", "createSupervisor() needs { workspace: <a directory inside a git repository> }.");
  }
  for (const [key, value] of Object.entries(options.timings ?? {})) {
    if (!(key in DEFAULT_TIMINGS)) throw new TroupeError("INVALID_ARGUMENT", `timings.${key} is not a timing; known: ${Object.keys(DEFAULT_TIMINGS).join(", ")}.`);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new TroupeError("INVALID_ARGUMENT", `timings.${key} must be a number of milliseconds ≥ 0.`);
  }
  const problems = policyProblems(resolvePolicy(options.policy ?? {}));
  if (problems.length > 0) throw new TroupeError("INVALID_ARGUMENT", `Unusable restart policy: ${problems.join("; ")}.`, { problems });
  if (options.strategy !== undefined && !isOneOf(STRATEGIES, options.strategy)) {
    throw new TroupeError("INVALID_ARGUMENT", `strategy must be one of ${STRATEGIES.join(", ")}.`);
  }
}
