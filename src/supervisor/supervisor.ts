import { existsSync } from "node:fs";
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import { resolveRef, SpareHost } from "../actors/index.js";
import { DEFAULT_POLICY, policyProblems, resolvePolicy } from "../machines/builder.js";
import type { TokenAuthority } from "../mailbox/index.js";
import type { AdoptReport, Auth, BuilderScreen, BuilderStatus, DoctorReport, GcReport, HistoryEntry, MailMessage, MailQuery, ReplyRequest, SendRequest, SpawnOptions, TroupeApi } from "../shared/contract.js";
import { TroupeError } from "../shared/errors.js";
import { parseSpawnRequest, validateBuilderName } from "../shared/spawn-request.js";
import type { Store } from "../storage/types.js";
import { BuilderRuntime, statusOf, type BuilderEnvironment } from "./builder/index.js";
import type { WorkspaceLayout } from "../shared/layout.js";
import { SupervisorMail } from "./mail.js";
import { adoptOrphans, collectTombstones, runDoctor, type MaintenanceDeps } from "./maintenance.js";
import { loadProfiles, resolveProfile, type AgentProfile } from "./profiles.js";
import { applyStrategy } from "./strategy.js";
import type { PolicyOptions, Strategy, SupervisorEvent, SupervisorTimings } from "./types.js";

export interface SupervisorParts {
  store: Store;
  layout: WorkspaceLayout;
  logger: Logger;
  timings: SupervisorTimings;
  policy: PolicyOptions;
  strategy: Strategy;
  nodePath: string;
  agentEnv: Record<string, string>;
  tokens: TokenAuthority;
}

/**
 * The supervisor tree of one workspace (DESIGN §4): the registry of builders,
 * name reservation, the strategies between siblings, notices to parents, and
 * the public API. What happens to one builder is its runtime's business
 * (`./builder/`); this class only finds the builder and asks.
 */
export class Supervisor implements TroupeApi {
  private readonly runtimes = new Map<string, BuilderRuntime>();
  /** Names with a spawn in flight: reserved synchronously so two spawns cannot race. */
  private readonly reserved = new Set<string>();
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();
  private readonly builderEnv: BuilderEnvironment;
  private readonly profiles: Record<string, AgentProfile>;
  private readonly mail_: SupervisorMail;
  /** One pty host booted ahead of need after the first launch: spawns skip a Node start-up. */
  private spareHost: SpareHost | null = null;
  private closed = false;

  constructor(private readonly parts: SupervisorParts) {
    this.profiles = loadProfiles(parts.layout.configFile);
    this.builderEnv = {
      store: parts.store,
      logger: parts.logger,
      layout: parts.layout,
      timings: parts.timings,
      nodePath: parts.nodePath,
      now: () => Date.now(),
      random: () => Math.random(),
      emit: (event) => this.emit(event),
      profileOf: (spec) => resolveProfile(this.profiles, spec.agent ?? "shell"),
      lifeChanged: (runtime, from, event) =>
        applyStrategy({ runtime, from, event, siblings: [...this.runtimes.values()], rootStrategy: parts.strategy, store: parts.store, logger: parts.logger }),
      agentEnv: (row) => ({ ...parts.agentEnv, TROUPE_AGENT: row.name, TROUPE_AGENT_ID: row.id, TROUPE_WORKSPACE: parts.layout.root, TROUPE_TOKEN: this.mail_.tokenFor(row.id) }),
      terminalUp: (runtime) => this.mail_.terminalUp(runtime.id),
      takeSpareHost: () => {
        const spare = this.spareHost;
        this.spareHost = null;
        // The next one boots while this launch goes on.
        this.bootSpareHost();
        return spare;
      },
      bootSpareHost: () => this.bootSpareHost(),
      notice: async (runtime, kind, reason, about) => {
        this.emit({ type: "notice", kind, name: runtime.name, id: runtime.id, to: runtime.row.parent ?? "operator", reason, at: Date.now() });
        await this.mail_.notice(kind, { name: runtime.name, id: runtime.id, reason, ...about }).catch((error) => runtime.log.error({ err: error }, `${kind} notice could not be sent`));
      },
    };
    this.mail_ = new SupervisorMail(
      {
        store: parts.store,
        logger: parts.logger,
        idleMs: parts.timings.idleMs,
        runtimeById: (id) => this.runtimeById(id),
        profileOf: (row) => this.builderEnv.profileOf(row.spec),
        workerDone: (id) => {
          const runtime = this.runtimeById(id);
          runtime?.done().catch((error) => runtime.log.error({ err: error }, "worker_done handling failed"));
        },
        onMail: (message) => this.emit({ type: "mail", message }),
      },
      parts.tokens,
    );
  }

  get workspace(): string {
    return this.parts.layout.root;
  }

  /** Restores every builder that is not a tombstone and reconciles it with the world (DESIGN §7). */
  async restore(): Promise<void> {
    const rows = this.parts.store.listActors().sort((a, b) => a.createdAt - b.createdAt);
    for (const row of rows) this.runtimes.set(row.name, BuilderRuntime.restore(this.builderEnv, row));
    await Promise.all([...this.runtimes.values()].map((runtime) => runtime.reconcile().catch((error) => runtime.log.error({ err: error }, "reconcile failed"))));
    for (const runtime of [...this.runtimes.values()]) if (runtime.life.state === "destroyed") this.unregister(runtime);
    this.mail_.start();
  }

  // ---- the API ---------------------------------------------------------------

  async spawn(options: SpawnOptions): Promise<BuilderStatus> {
    this.assertOpen();
    const { name, role, parent: parentName, replace, spec } = parseSpawnRequest(options);
    const profile = resolveProfile(this.profiles, spec.agent);
    if (profile.command.length === 0 && spec.cmd.length === 0) {
      throw new TroupeError("INVALID_ARGUMENT", `Builder "${name}" needs a command: pass cmd (e.g. ["bash"]) or an agent profile (${Object.keys(this.profiles).filter((p) => p !== "shell").join(", ")}).`, { name });
    }
    const policy = { ...this.parts.policy, ...spec.policy };
    const problems = policyProblems(resolvePolicy(policy));
    if (problems.length > 0) throw new TroupeError("INVALID_ARGUMENT", `Unusable restart policy for "${name}": ${problems.join("; ")}.`, { name, problems });
    const parent = parentName === null ? null : this.liveRuntime(parentName, "parent");
    if (this.reserved.has(name)) throw new TroupeError("NAME_TAKEN", `A builder named "${name}" is being spawned right now; wait for it or pick another name.`, { name });
    const existing = this.runtimes.get(name);
    if (existing && !replace) {
      const st = existing.status();
      throw new TroupeError("NAME_TAKEN", `Builder "${name}" already exists (${st.state}${st.pid ? `, pid ${st.pid}` : ""}). Destroy it first, or spawn with replace to tear it down and start a new one.`, { name, state: st.state, pid: st.pid });
    }
    this.reserved.add(name);
    try {
      const baseCommit = await resolveRef(this.parts.layout.root, spec.base ?? "HEAD");
      if (existing) await this.destroy(name, { force: false });
      const path = this.parts.layout.worktreePath(name);
      if (existsSync(path)) {
        throw new TroupeError("NAME_TAKEN", `${path} already exists but no builder owns it (a lost registration?). Run \`troupe doctor\` to see what it is, then \`troupe adopt\` or \`troupe doctor --fix\`.`, { name, path });
      }
      const runtime = BuilderRuntime.create(this.builderEnv, { id: nanoid(), name, role, parent: parent && { name: parent.name, id: parent.id }, spec: { ...spec, policy, baseCommit } });
      // A host boots while the row and the worktree are made (the first spawn has no spare yet).
      this.bootSpareHost();
      this.runtimes.set(name, runtime);
      try {
        await runtime.spawn();
      } catch (error) {
        this.unregister(runtime);
        throw error;
      }
      return runtime.status();
    } finally {
      this.reserved.delete(name);
    }
  }

  async status(options: { all?: boolean } = {}): Promise<BuilderStatus[]> {
    this.assertOpen();
    const rows = this.parts.store.listActors({ includeDestroyed: options.all === true });
    return rows.sort((a, b) => a.createdAt - b.createdAt).map((row) => (this.runtimes.get(row.name)?.id === row.id ? this.runtimes.get(row.name)!.status() : statusOf(row)));
  }

  /** The newest incarnation of `name`, tombstone included. */
  async get(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.runtimes.get(name);
    if (runtime) return runtime.status();
    const row = this.parts.store.findActorByName(name, { includeDestroyed: true });
    if (!row) throw notFound(name);
    return statusOf(row);
  }

  /** Every transition of the newest incarnation of `name` (tombstones included), oldest first. */
  async history(name: string): Promise<HistoryEntry[]> {
    this.assertOpen();
    validateBuilderName(name);
    const row = this.parts.store.findActorByName(name, { includeDestroyed: true });
    if (!row) throw notFound(name);
    return this.parts.store.history(row.id).map((h) => ({ from: h.from, to: h.to, event: h.event, at: new Date(h.at).toISOString() }));
  }

  /** What the builder's terminal shows now, as text (DESIGN §5). */
  async screen(name: string): Promise<BuilderScreen> {
    this.assertOpen();
    const runtime = this.liveRuntime(name, "builder");
    return runtime.screen();
  }

  /** Stops the agent gracefully (SIGTERM, then SIGKILL): working → completed. Idempotent. */
  async stop(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.liveRuntime(name, "builder");
    await runtime.stop();
    return runtime.status();
  }

  /**
   * Starts a completed or zombie builder again in its worktree (a working one
   * is stopped first). A live host still serving it is adopted, never doubled.
   */
  async restart(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.liveRuntime(name, "builder");
    await runtime.restart();
    return runtime.status();
  }

  /**
   * Tears the builder down (agent, host, worktree, branch) and keeps its row
   * as a tombstone. Destroying a tombstone succeeds and changes nothing. A
   * worktree with uncommitted changes, or a branch with commits not in its
   * base, is refused (nothing changes) unless `force`.
   */
  async destroy(name: string, options: { force?: boolean } = {}): Promise<BuilderStatus> {
    this.assertOpen();
    validateBuilderName(name);
    const runtime = this.runtimes.get(name);
    if (!runtime) {
      const tombstone = this.parts.store.findActorByName(name, { includeDestroyed: true });
      if (tombstone?.state === "destroyed") return statusOf(tombstone);
      throw notFound(name);
    }
    await runtime.destroy({ force: options.force === true });
    this.unregister(runtime);
    return runtime.status();
  }

  /**
   * Sends mail (DESIGN §8). `auth.token` is an agent's TROUPE_TOKEN; without
   * one the sender is the operator. Resolves once every message is durable.
   */
  async send(request: SendRequest, auth: Auth = {}): Promise<MailMessage[]> {
    this.assertOpen();
    return this.mail_.send(request, auth);
  }

  /** An inbox (the operator's when `name` is omitted), oldest first. */
  async mail(request: MailQuery = {}, auth: Auth = {}): Promise<MailMessage[]> {
    this.assertOpen();
    return this.mail_.list(request, auth);
  }

  async read(id: string, auth: Auth = {}): Promise<MailMessage> {
    this.assertOpen();
    return this.mail_.read(id, auth);
  }

  async reply(id: string, request: ReplyRequest, auth: Auth = {}): Promise<MailMessage> {
    this.assertOpen();
    return this.mail_.reply(id, request, auth);
  }

  /** Every mismatch between the store and the world (DESIGN §7); with `fix`, each is repaired. */
  async doctor(options: { fix?: boolean } = {}): Promise<DoctorReport> {
    this.assertOpen();
    return runDoctor(this.maintenanceDeps(), options);
  }

  /** Registers live pty hosts whose builder has no row (a lost registration) as working builders. */
  async adopt(): Promise<AdoptReport> {
    this.assertOpen();
    return adoptOrphans(this.maintenanceDeps());
  }

  /** Forgets tombstones older than `olderThanMs` (default 7 days) once nothing is left of them. */
  async gc(options: { olderThanMs?: number } = {}): Promise<GcReport> {
    this.assertOpen();
    return { removed: await collectTombstones(this.maintenanceDeps(), options) };
  }

  subscribe(listener: (event: SupervisorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the supervisor; pty hosts (and so agents) keep running for the next one to adopt. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.spareHost?.discard();
    this.spareHost = null;
    await this.mail_.stop();
    await Promise.all([...this.runtimes.values()].map((runtime) => runtime.drain()));
    for (const runtime of this.runtimes.values()) runtime.shutdown();
    this.runtimes.clear();
    this.listeners.clear();
    await this.parts.store.close();
  }

  // ---- the tree -----------------------------------------------------------------

  private runtimeById(id: string): BuilderRuntime | undefined {
    for (const runtime of this.runtimes.values()) if (runtime.id === id) return runtime;
    return undefined;
  }

  /** A builder that reached its tombstone (or never got a row) leaves the registry. */
  private unregister(runtime: BuilderRuntime): void {
    if (this.runtimes.get(runtime.name) === runtime) this.runtimes.delete(runtime.name);
    runtime.shutdown();
  }

  private bootSpareHost(): void {
    if (this.closed || this.spareHost) return;
    try {
      this.spareHost = new SpareHost({ nodePath: this.parts.nodePath, runDir: this.parts.layout.ptyDir, logPath: this.parts.layout.spareHostLogFile });
    } catch (error) {
      this.parts.logger.warn({ err: error }, "could not boot a spare pty host; spawns start their own");
    }
  }

  private emit(event: SupervisorEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.parts.logger.error({ err: error }, "subscriber threw");
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new TroupeError("SUPERVISOR_CLOSED", "This supervisor is closed; create a new one with createSupervisor().");
  }

  private liveRuntime(name: string, what: "builder" | "parent"): BuilderRuntime {
    validateBuilderName(name);
    const runtime = this.runtimes.get(name);
    if (runtime) return runtime;
    const tombstone = this.parts.store.findActorByName(name, { includeDestroyed: true });
    if (tombstone) throw new TroupeError("DESTROYED", `${what === "parent" ? "Parent" : "Builder"} "${name}" was destroyed; spawn a new one to use the name again.`, { name });
    throw notFound(name, what);
  }

  private maintenanceDeps(): MaintenanceDeps {
    return {
      layout: this.parts.layout,
      store: this.parts.store,
      killTimeoutMs: this.parts.timings.killTimeoutMs,
      builderEnv: this.builderEnv,
      runtimeById: (id) => this.runtimeById(id),
      runtimeByName: (name) => this.runtimes.get(name),
      register: (runtime) => this.runtimes.set(runtime.name, runtime),
      destroy: async (runtime) => {
        await runtime.destroy({ force: true });
        this.unregister(runtime);
      },
    };
  }
}

function notFound(name: string, what: "builder" | "parent" = "builder"): TroupeError {
  return new TroupeError("NOT_FOUND", `No ${what} named "${name}". See the builders with \`troupe status\`.`, { name });
}

export { DEFAULT_POLICY };
