/**
 * The public library API of troupe (DESIGN §10), and nothing else.
 */
export { createSupervisor, Supervisor, BUILTIN_PROFILES, DEFAULT_TIMINGS } from "./supervisor/index.js";
export type {
  SpawnOptions,
  BuilderStatus,
  SupervisorEvent,
  SupervisorOptions,
  SupervisorTimings,
  PolicyOptions,
  RestartType,
  Strategy,
  PtyMode,
  AgentProfile,
} from "./supervisor/index.js";
export { TroupeError, isTroupeError, type TroupeErrorCode } from "./shared/errors.js";
export { builderMachine, builderMachineDefinition, BUILDER_MACHINE_VERSION } from "./machines/builder.js";
