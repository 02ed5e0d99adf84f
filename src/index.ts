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
export { connect, TroupeClient, type ConnectOptions } from "./client/connect.js";
export { TroupeError, isTroupeError, type TroupeErrorCode } from "./shared/errors.js";
export { faultPoints, type FaultPoint } from "./shared/faults.js";
export type { DoctorFinding, FindingKind } from "./supervisor/doctor.js";
export type { DoctorReport } from "./supervisor/maintenance.js";
export type { MailRow, Priority } from "./storage/types.js";
export type { SendRequest, ReplyRequest } from "./mailbox/index.js";
export { builderMachine, builderMachineDefinition, BUILDER_MACHINE_VERSION } from "./machines/builder.js";
