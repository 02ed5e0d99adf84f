import { existsSync } from "node:fs";
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import { DEFAULT_POLICY, policyProblems, resolvePolicy, type BuilderEvent } from "../machines/builder.js";
import { join } from "node:path";
import { addWorktree, resolveRef, SpareHost } from "../actors/index.js";
import type { ReplyRequest, SendRequest, TokenAuthority } from "../mailbox/index.js";
import type { ActorRow, LifeState, MailRow, Store } from "../storage/types.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { fault } from "../shared/faults.js";
import { BuilderRuntime, type RuntimeHost } from "./builder-runtime.js";
import type { WorkspaceLayout } from "./layout.js";
import { SupervisorMail } from "./mail.js";
import { adoptOrphans, collectTombstones, runDoctor, type DoctorReport, type MaintenanceDeps } from "./maintenance.js";
import { loadProfiles, resolveProfile, type AgentProfile } from "./profiles.js";
import { reconcileBuilder } from "./reconcile.js";
import { parseSpawnRequest, validateBuilderName } from "../shared/spawn-request.js";
import type { BuilderSpec } from "../shared/contract.js";
import { contextOf, statusOf } from "./status.js";
import { applyStrategy } from "./strategy.js";
import { assertNothingToLose, teardownBuilder } from "./teardown.js";
import type { BuilderStatus, PolicyOptions, SpawnOptions, Strategy, SupervisorEvent, SupervisorTimings } from "./types.js";

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
 * The supervisor tree of one workspace (DESIGN §4). The root node is owned by
 * the operator; a builder spawned with `parent` is supervised under its
 * parent's node, whose strategy says what happens to siblings when one of
 * them is restarted.
 */
export class Supervisor {
  private readonly runtimes = new Map<string, BuilderRuntime>();
  /** Names with a spawn in flight: reserved synchronously so two spawns cannot race. */
  private readonly reserved = new Set<string>();
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();
  private readonly runtimeHost: RuntimeHost;
  private profiles: Record<string, AgentProfile>;
  private readonly mail_: SupervisorMail;
  /** One pty host booted ahead of need after the first launch: spawns skip a Node start-up. */
  private spareHost: SpareHost | null = null;
  private closed = false;

  constructor(private readonly parts: SupervisorParts) {
    this.profiles = loadProfiles(parts.layout.configFile);
    this.runtimeHost = {
      store: parts.store,
      logger: parts.logger,
      layout: parts.layout,
      timings: parts.timings,
      nodePath: parts.nodePath,
      now: () => Date.now(),
      random: () => Math.random(),
      emit: (event) => this.emit(event),
      profileOf: (row) => resolveProfile(this.profiles, (row.spec as { agent?: string }).agent ?? "shell"),
      afterTransition: (runtime, from, event) => this.applyStrategy(runtime, from, event),
      agentEnv: (row) => ({ ...parts.agentEnv, TROUPE_AGENT: row.name, TROUPE_AGENT_ID: row.id, TROUPE_WORKSPACE: parts.layout.root, TROUPE_TOKEN: this.mail_.tokenFor(row.id) }),
      terminalUp: (runtime) => this.mail_.terminalUp(runtime.id),
      takeSpareHost: () => {
        const spare = this.spareHost;
        this.spareHost = null;
        // The next one boots while this launch goes on.
        this.bootSpareHost();
        return spare;
      },
      replenishSpareHost: () => this.bootSpareHost(),
      notice: async (runtime, kind, reason) => {
        this.emit({ type: "notice", kind, name: runtime.name, id: runtime.id, to: runtime.row.parent ?? "operator", reason, at: Date.now() });
        await this.mail_.notice(kind, { name: runtime.name, id: runtime.id, reason }).catch((error) => parts.logger.error({ err: error, actor: runtime.name, actorId: runtime.id }, `${kind} notice could not be sent`));
      },
    };
    this.mail_ = new SupervisorMail(
      {
        store: parts.store,
        logger: parts.logger,
        idleMs: parts.timings.idleMs,
        runtimeById: (id) => [...this.runtimes.values()].find((runtime) => runtime.id === id),
        profileOf: (row) => this.runtimeHost.profileOf(row),
        workerDone: (id) => this.workerDone(id),
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
    for (const row of rows) {
      const runtime = BuilderRuntime.restore(this.runtimeHost, row);
      this.runtimes.set(row.name, runtime);
    }
    await Promise.all(
      [...this.runtimes.values()].map((runtime) =>
        runtime.run(() => reconcileBuilder(runtime, this.teardownDeps())).catch((error) => this.parts.logger.error({ err: error, actor: runtime.name, actorId: runtime.id }, "reconcile failed")),
      ),
    );
    for (const runtime of [...this.runtimes.values()]) if (runtime.life.state === "destroyed") this.runtimes.delete(runtime.name);
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
    const problems = policyProblems(resolvePolicy({ ...this.parts.policy, ...spec.policy }));
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
      const base = await resolveRef(this.parts.layout.root, spec.base ?? "HEAD");
      if (existing) await this.destroy(name, { force: false });
      const path = this.parts.layout.worktreePath(name);
      if (existsSync(path)) {
        throw new TroupeError("NAME_TAKEN", `${path} already exists but no builder owns it (a lost registration?). Run \`troupe doctor\` to see what it is, then \`troupe adopt\` or \`troupe doctor --fix\`.`, { name, path });
      }
      return await this.spawnFresh(name, role, parent, { ...spec, baseCommit: base });
    } finally {
      this.reserved.delete(name);
    }
  }

  private async spawnFresh(name: string, role: string | null, parent: BuilderRuntime | null, spec: BuilderSpec): Promise<BuilderStatus> {
    const at = Date.now();
    const id = nanoid();
    const policy = { ...this.parts.policy, ...(spec.policy as PolicyOptions) };
    const row: ActorRow = {
      id, name, role,
      parent: parent?.name ?? null,
      parentId: parent?.id ?? null,
      supervisorNode: parent?.id ?? "root",
      state: "booting", substate: "provisioning",
      snapshot: null, machineVersion: 0,
      // Invariant A: every artifact's name is in the row before the artifact exists.
      worktree: this.parts.layout.worktreePath(name),
      branch: this.parts.layout.branchName(name),
      ptySocket: this.parts.layout.ptySocketPath(id),
      pty: null,
      pid: null, pidStartTime: null, hostPid: null, hostStartTime: null,
      restarts: 0, restartTimes: [],
      spec: { ...spec, policy },
      intent: { op: "spawn", step: "row", at },
      createdAt: at, updatedAt: at, destroyedAt: null, lastActivityAt: null,
    };
    const runtime = BuilderRuntime.create(this.runtimeHost, row, { restartType: spec.restart as never, policy });
    // A host boots while the row and the worktree are made (the first spawn has no spare yet).
    this.bootSpareHost();
    // Invariant A: the row is durable before the first artifact exists.
    await this.parts.store.write((tx) => {
      tx.insertActor(runtime.row);
      tx.appendHistory({ actorId: id, name, from: "(none)", to: "booting.provisioning", event: "SPAWN", at });
    });
    this.runtimes.set(name, runtime);
    this.emit({ type: "transition", name, id, from: "(none)", to: "booting.provisioning", event: "SPAWN", at });
    try {
      await runtime.run(async () => {
        fault("spawn.after-row");
        const path = runtime.row.worktree!;
        const branch = runtime.row.branch!;
        const made = await addWorktree({ repo: this.parts.layout.root, path, branch, base: spec.baseCommit as string });
        fault("spawn.after-worktree");
        await runtime.provision({ path, branch }, { spec: { ...runtime.row.spec, branchExisted: made.branchExisted } });
        fault("spawn.after-provisioned");
        await runtime.start({ firstStart: true });
      });
    } catch (error) {
      this.parts.logger.warn({ err: error, actor: name, actorId: id }, "spawn failed: rolling back");
      await runtime.run(() => this.teardown(runtime, { force: true, rollback: true })).catch((rollbackError) =>
        this.parts.logger.error({ err: rollbackError, actor: name, actorId: id }, "spawn rollback failed"),
      );
      this.runtimes.delete(name);
      runtime.shutdown();
      if (isTroupeError(error)) throw new TroupeError(error.code, `Spawn of "${name}" failed and was rolled back (nothing left behind): ${error.message}`, { ...error.details, name }, { cause: error });
      throw new TroupeError("SPAWN_FAILED", `Spawn of "${name}" failed and was rolled back (nothing left behind): ${(error as Error).message}`, { name }, { cause: error });
    }
    return runtime.status();
  }

  async status(options: { all?: boolean } = {}): Promise<BuilderStatus[]> {
    this.assertOpen();
    const rows = this.parts.store.listActors({ includeDestroyed: options.all === true });
    return rows
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((row) => this.runtimes.get(row.name)?.id === row.id ? this.runtimes.get(row.name)!.status() : statusOf(row, contextOf(row)));
  }

  /** The newest incarnation of `name`, tombstone included. */
  async get(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.runtimes.get(name);
    if (runtime) return runtime.status();
    const row = this.parts.store.findActorByName(name, { includeDestroyed: true });
    if (!row) throw notFound(name);
    return statusOf(row, contextOf(row));
  }

  /** Every transition of the newest incarnation of `name` (tombstones included), oldest first. */
  async history(name: string): Promise<Array<{ from: string; to: string; event: string; at: string }>> {
    this.assertOpen();
    validateBuilderName(name);
    const row = this.parts.store.findActorByName(name, { includeDestroyed: true });
    if (!row) throw notFound(name);
    return this.parts.store.history(row.id).map((h) => ({ from: h.from, to: h.to, event: h.event, at: new Date(h.at).toISOString() }));
  }

  /** Stops the agent gracefully (SIGTERM, then SIGKILL): working → completed. Idempotent. */
  async stop(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.liveRuntime(name, "builder");
    await runtime.run(async () => {
      const { state, substate } = runtime.life;
      if (state === "working") {
        // Write-ahead: a stop interrupted by a crash is finished as a stop on the next start.
        await runtime.persist({ intent: { op: "stop", step: "killing", at: Date.now() } });
        await runtime.terminateAgent();
        fault("stop.after-kill");
        await runtime.transition({ type: "STOPPED", at: Date.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null, intent: null });
      } else if (state === "booting" && substate === "backoff") {
        await runtime.transition({ type: "STOPPED", at: Date.now() });
      } else if (state === "booting") {
        throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${name}" is starting (${substate}); stop it once it is working, or destroy it.`, { name });
      }
    });
    return runtime.status();
  }

  /**
   * Starts a completed or zombie builder again in its worktree (a working one
   * is stopped first). A live host still serving it is adopted, never doubled.
   */
  async restart(name: string): Promise<BuilderStatus> {
    this.assertOpen();
    const runtime = this.liveRuntime(name, "builder");
    await runtime.run(async () => {
      if (runtime.life.state === "working") {
        await runtime.terminateAgent();
        await runtime.transition({ type: "STOPPED", at: Date.now() }, { pid: null, hostPid: null });
      }
      if (runtime.life.state === "booting") throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${name}" is already starting (${runtime.life.substate}).`, { name });
      await runtime.transition({ type: "RESTART", at: Date.now() });
      fault("restart.after-transition");
      await runtime.start({ firstStart: false });
    });
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
      if (tombstone?.state === "destroyed") return statusOf(tombstone, contextOf(tombstone));
      throw notFound(name);
    }
    await runtime.run(async () => {
      if (runtime.life.state === "destroyed") return;
      if (!options.force && runtime.life.state !== "destroying") await assertNothingToLose(runtime, this.parts.layout.root);
      await this.teardown(runtime, { force: options.force === true, rollback: false });
    });
    this.runtimes.delete(name);
    runtime.shutdown();
    return statusOf(runtime.row, runtime.context);
  }

  /**
   * Sends mail (DESIGN §8). `auth.token` is an agent's TROUPE_TOKEN; without
   * one the sender is the operator. Resolves once every message is durable.
   */
  async send(request: SendRequest, auth: { token?: string } = {}): Promise<MailRow[]> {
    this.assertOpen();
    return this.mail_.send(request, auth);
  }

  /** An inbox (the operator's when `name` is omitted), oldest first. */
  async mail(request: { name?: string; unread?: boolean } = {}, auth: { token?: string } = {}): Promise<MailRow[]> {
    this.assertOpen();
    return this.mail_.list(request, auth);
  }

  async read(id: string, auth: { token?: string } = {}): Promise<MailRow> {
    this.assertOpen();
    return this.mail_.read(id, auth);
  }

  async reply(id: string, request: ReplyRequest, auth: { token?: string } = {}): Promise<MailRow> {
    this.assertOpen();
    return this.mail_.reply(id, request, auth);
  }

  /** Every mismatch between the store and the world (DESIGN §7); with `fix`, each is repaired. */
  async doctor(options: { fix?: boolean } = {}): Promise<DoctorReport> {
    this.assertOpen();
    return runDoctor(this.maintenanceDeps(), options);
  }

  /** Registers live pty hosts whose builder has no row (a lost registration) as working builders. */
  async adopt(): Promise<Awaited<ReturnType<typeof adoptOrphans>>> {
    this.assertOpen();
    return adoptOrphans(this.maintenanceDeps());
  }

  /** Forgets tombstones older than `olderThanMs` (default 7 days) once nothing is left of them. */
  async gc(options: { olderThanMs?: number } = {}): Promise<{ removed: Array<{ name: string; id: string }> }> {
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
    await Promise.all([...this.runtimes.values()].map((runtime) => runtime.run(async () => undefined)));
    for (const runtime of this.runtimes.values()) runtime.shutdown();
    this.runtimes.clear();
    this.listeners.clear();
    await this.parts.store.close();
  }

  // ---- internals --------------------------------------------------------------

  /** `worker_done` from a builder: its agent is stopped gracefully and it is completed. */
  private workerDone(id: string): void {
    const runtime = [...this.runtimes.values()].find((candidate) => candidate.id === id);
    if (!runtime) return;
    void runtime
      .run(async () => {
        if (runtime.life.state !== "working") return;
        await runtime.terminateAgent();
        await runtime.transition({ type: "DONE", at: Date.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null });
      })
      .catch((error) => this.parts.logger.error({ err: error, actor: runtime.name, actorId: runtime.id }, "worker_done handling failed"));
  }

  private bootSpareHost(): void {
    if (this.closed || this.spareHost) return;
    try {
      this.spareHost = new SpareHost({ nodePath: this.parts.nodePath, runDir: this.parts.layout.ptyDir, logPath: join(this.parts.layout.logsDir, "pty-host-spare.log") });
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
      runtimeHost: this.runtimeHost,
      runtimeById: (id) => [...this.runtimes.values()].find((runtime) => runtime.id === id),
      runtimeByName: (name) => this.runtimes.get(name),
      register: (runtime) => this.runtimes.set(runtime.name, runtime),
      destroyRuntime: (runtime) => this.forceTeardown(runtime),
      finishTeardown: (runtime) => this.forceTeardown(runtime),
    };
  }

  private async forceTeardown(runtime: BuilderRuntime): Promise<void> {
    await runtime.run(() => this.teardown(runtime, { force: true, rollback: false }));
    this.runtimes.delete(runtime.name);
    runtime.shutdown();
  }

  private teardownDeps() {
    return { teardown: (runtime: BuilderRuntime, options: { force: boolean; rollback: boolean }) => this.teardown(runtime, options) };
  }

  private teardown(runtime: BuilderRuntime, options: { force: boolean; rollback: boolean }): Promise<void> {
    return teardownBuilder(runtime, this.parts.layout.root, options);
  }

  private applyStrategy(runtime: BuilderRuntime, from: LifeState, event: BuilderEvent): void {
    applyStrategy({ runtime, from, event, siblings: [...this.runtimes.values()], rootStrategy: this.parts.strategy, store: this.parts.store, logger: this.parts.logger });
  }
}

function notFound(name: string, what: "builder" | "parent" = "builder"): TroupeError {
  return new TroupeError("NOT_FOUND", `No ${what} named "${name}". See the builders with \`troupe status\`.`, { name });
}


export { DEFAULT_POLICY };
