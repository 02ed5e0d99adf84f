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
export type {
  TroupeApi,
  BuilderScreen,
  AdoptReport,
  Auth,
  BuilderSpec,
  DoctorFinding,
  DoctorReport,
  FindingKind,
  GcReport,
  HistoryEntry,
  MailMessage,
  MailQuery,
  Priority,
  ReplyRequest,
  SendRequest,
} from "./shared/contract.js";
/** @deprecated the name of MailMessage before the contract was written once. */
export type { MailRow } from "./storage/types.js";
export { builderMachine, BUILDER_MACHINE_VERSION } from "./machines/builder.js";
export { builderMachineDefinition } from "./machines/definition.js";
