import type { Logger } from "pino";
import type { SpareHost } from "../../actors/index.js";
import type { BuilderEvent } from "../../machines/builder.js";
import type { BuilderSpec } from "../../shared/contract.js";
import type { ActorRow, LifeState, Store } from "../../storage/types.js";
import type { WorkspaceLayout } from "../../shared/layout.js";
import type { AgentProfile } from "../profiles.js";
import type { SupervisorEvent, SupervisorTimings } from "../types.js";
import type { BuilderRuntime } from "./runtime.js";

export type NoticeKind = "worker_died" | "contract_violation";

/** What a person reading a notice wants beside the chart's reason code. */
export interface NoticeDetail {
  detail: string;
  exit: { code: number | null; signal: string | null } | null;
  outputTail: string[];
}

/**
 * What one builder needs from the tree it lives in. The supervisor provides
 * it; the builder never reaches for its siblings or the registry itself.
 */
export interface BuilderEnvironment {
  store: Store;
  logger: Logger;
  layout: WorkspaceLayout;
  timings: SupervisorTimings;
  nodePath: string;
  now(): number;
  random(): number;
  emit(event: SupervisorEvent): void;
  profileOf(spec: BuilderSpec): AgentProfile;
  /** Called after each persisted change of life state (the tree applies its strategy there). */
  lifeChanged(runtime: BuilderRuntime, from: LifeState, event: BuilderEvent): void;
  /** Extra environment for an agent process (identity for mail). */
  agentEnv(row: ActorRow): Record<string, string>;
  /** The builder's terminal came up: mail waiting for it can be typed. */
  terminalUp(runtime: BuilderRuntime): void;
  /** The pre-booted pty host to use for the next launch, if any (it is then no longer spare). */
  takeSpareHost(): SpareHost | null;
  /** Boots a spare pty host for the launch after this one, unless one waits already. */
  bootSpareHost(): void;
  /** Tells the builder's parent (nearest live ancestor, else the operator), durably. */
  notice(runtime: BuilderRuntime, kind: NoticeKind, reason: string, about?: NoticeDetail): Promise<void>;
}
