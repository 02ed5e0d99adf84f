import { nanoid } from "nanoid";
import type { Logger } from "pino";
import { DEFAULT_POLICY, policyProblems, resolvePolicy, type BuilderEvent } from "../machines/builder.js";
import { addWorktree, removeWorktree, isWorktreeDirty, deleteBranch, resolveRef, countCommitsAhead } from "../actors/index.js";
import type { ActorRow, LifeState, Store } from "../storage/types.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { BuilderRuntime, statusOf, type RuntimeHost } from "./builder-runtime.js";
import type { WorkspaceLayout } from "./layout.js";
import { validateBuilderName, validateRole } from "./names.js";
import { loadProfiles, resolveProfile, type AgentProfile } from "./profiles.js";
import { reconcileBuilder } from "./reconcile.js";
import { fault } from "../shared/faults.js";
import { adoptOrphans, collectTombstones, runDoctor, type DoctorReport, type MaintenanceDeps } from "./maintenance.js";
import { SupervisorMail } from "./mail.js";
import type { TokenAuthority, ReplyRequest, SendRequest } from "../mailbox/index.js";
import type { MailRow } from "../storage/types.js";
import { validateSpawnOptions } from "./spawn-options.js";
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
    const spec = validateSpawnOptions(options);
    const name = validateBuilderName(options.name);
    const role = validateRole(options.role);
    const profile = resolveProfile(this.profiles, spec.agent);
    if (profile.command.length === 0 && spec.cmd.length === 0) {
      throw new TroupeError("INVALID_ARGUMENT", `Builder "${name}" needs a command: pass cmd (e.g. ["bash"]) or an agent profile (${Object.keys(this.profiles).filter((p) => p !== "shell").join(", ")}).`, { name });
    }
    const problems = policyProblems(resolvePolicy({ ...this.parts.policy, ...spec.policy }));
    if (problems.length > 0) throw new TroupeError("INVALID_ARGUMENT", `Unusable restart policy for "${name}": ${problems.join("; ")}.`, { name, problems });
    const parent = options.parent === undefined ? null : this.liveRuntime(validateBuilderName(options.parent), "parent");
    if (this.reserved.has(name)) throw new TroupeError("NAME_TAKEN", `A builder named "${name}" is being spawned right now; wait for it or pick another name.`, { name });
    const existing = this.runtimes.get(name);
    if (existing && !options.replace) {
      const st = existing.status();
      throw new TroupeError("NAME_TAKEN", `Builder "${name}" already exists (${st.state}${st.pid ? `, pid ${st.pid}` : ""}). Destroy it first, or spawn with replace to tear it down and start a new one.`, { name, state: st.state, pid: st.pid });
    }
    this.reserved.add(name);
    try {
      const base = await resolveRef(this.parts.layout.root, spec.base ?? "HEAD");
      if (existing) await this.destroy(name, { force: false });
      return await this.spawnFresh(name, role, parent, { ...spec, baseCommit: base });
    } finally {
      this.reserved.delete(name);
    }
  }

  private async spawnFresh(name: string, role: string | null, parent: BuilderRuntime | null, spec: Record<string, unknown> & { restart: ActorRow["spec"]["restart"] }): Promise<BuilderStatus> {
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
      worktree: null, branch: null, ptySocket: null, pty: null,
      pid: null, pidStartTime: null, hostPid: null, hostStartTime: null,
      restarts: 0, restartTimes: [],
      spec: { ...spec, policy },
      intent: { op: "spawn", step: "row", at },
      createdAt: at, updatedAt: at, destroyedAt: null, lastActivityAt: null,
    };
    const runtime = BuilderRuntime.create(this.runtimeHost, row, { restartType: spec.restart as never, policy });
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
        const path = this.parts.layout.worktreePath(name);
        const branch = this.parts.layout.branchName(name);
        await runtime.persist({ worktree: path, branch, intent: { op: "spawn", step: "worktree", at: Date.now() } });
        const made = await addWorktree({ repo: this.parts.layout.root, path, branch, base: spec.baseCommit as string });
        (runtime.row.spec as Record<string, unknown>).branchExisted = made.branchExisted;
        await runtime.persist({ spec: runtime.row.spec });
        fault("spawn.after-worktree");
        await runtime.provision({ path, branch });
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
      if (!options.force && runtime.life.state !== "destroying") await this.assertNothingToLose(runtime);
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

  private async assertNothingToLose(runtime: BuilderRuntime): Promise<void> {
    const { worktree, branch, name } = runtime.row;
    if (worktree && (await isWorktreeDirty(worktree).catch(() => false))) {
      throw new TroupeError("WORKTREE_DIRTY", `Builder "${name}" has uncommitted changes in ${worktree}; commit or discard them, or destroy with force to throw them away.`, { name, worktree });
    }
    const spec = runtime.row.spec as { baseCommit?: string; branchExisted?: boolean };
    if (branch && spec.baseCommit) {
      const ahead = await countCommitsAhead(this.parts.layout.root, spec.baseCommit, branch).catch(() => 0);
      if (ahead > 0) {
        throw new TroupeError("WORKTREE_DIRTY", `Branch ${branch} of builder "${name}" has ${ahead} commit(s) not in its base; merge them, or destroy with force to delete the branch.`, { name, branch, ahead });
      }
    }
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
      destroyRuntime: async (runtime) => {
        await runtime.run(() => this.teardown(runtime, { force: true, rollback: false }));
        this.runtimes.delete(runtime.name);
        runtime.shutdown();
      },
      finishTeardown: async (runtime) => {
        await runtime.run(() => this.teardown(runtime, { force: true, rollback: false }));
        this.runtimes.delete(runtime.name);
        runtime.shutdown();
      },
    };
  }

  private teardownDeps() {
    return { teardown: (runtime: BuilderRuntime, options: { force: boolean; rollback: boolean }) => this.teardown(runtime, options) };
  }

  /**
   * DESIGN §3/§7: destroying.stopping → destroying.removingWorktree → destroyed.
   * Each step is persisted, so a crash mid-way resumes here on the next start.
   */
  private async teardown(runtime: BuilderRuntime, options: { force: boolean; rollback: boolean }): Promise<void> {
    if (runtime.life.state !== "destroying") {
      await runtime.transition({ type: "DESTROY", at: Date.now() }, { intent: { op: options.rollback ? "rollback" : "destroy", step: "stopping", at: Date.now() } });
      fault("destroy.after-destroying");
    }
    if (runtime.life.substate === "stopping") {
      await runtime.terminateAgent();
      fault("destroy.after-kill");
      await runtime.transition({ type: "PROCESS_GONE", at: Date.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null, intent: { op: "destroy", step: "removing-worktree", at: Date.now() } });
      fault("destroy.after-process-gone");
    }
    const { worktree, branch } = runtime.row;
    const spec = runtime.row.spec as { branchExisted?: boolean };
    if (worktree) await removeWorktree({ repo: this.parts.layout.root, path: worktree, force: true });
    fault("destroy.after-worktree");
    // A branch troupe made is troupe's to delete; one that existed before the spawn is the user's.
    if (branch && !(options.rollback && spec.branchExisted)) await deleteBranch(this.parts.layout.root, branch);
    fault("destroy.after-branch");
    await runtime.transition({ type: "WORKTREE_REMOVED", at: Date.now() }, { intent: null, ptySocket: null });
  }

  /**
   * OTP strategies: when a builder is about to be restarted after an exit,
   * one_for_all restarts its siblings too, rest_for_one those spawned after
   * it. Temporary siblings are stopped, never restarted.
   */
  private applyStrategy(runtime: BuilderRuntime, from: LifeState, event: BuilderEvent): void {
    if (event.type !== "EXITED" || from !== "working" || runtime.life.state !== "booting") return;
    const strategy = this.strategyOf(runtime.row.supervisorNode);
    if (strategy === "one_for_one") return;
    const siblings = [...this.runtimes.values()]
      .filter((other) => other !== runtime && other.row.supervisorNode === runtime.row.supervisorNode)
      .sort((a, b) => a.row.createdAt - b.row.createdAt);
    const affected = strategy === "one_for_all" ? siblings : siblings.filter((other) => other.row.createdAt > runtime.row.createdAt);
    for (const sibling of affected) {
      void sibling
        .run(async () => {
          if (sibling.life.state !== "working") return;
          const temporary = (sibling.row.spec as { restart?: string }).restart === "temporary";
          await sibling.terminateAgent();
          const at = Date.now();
          if (temporary) {
            await sibling.transition({ type: "STOPPED", at }, { pid: null, hostPid: null });
            return;
          }
          await sibling.transition({ type: "SIBLING_RESTART", at, cause: runtime.name }, { pid: null, hostPid: null });
          await sibling.start({ firstStart: false });
        })
        .catch((error) => this.parts.logger.error({ err: error, actor: sibling.name, actorId: sibling.id }, `${strategy} restart failed`));
    }
  }

  private strategyOf(node: string): Strategy {
    if (node === "root") return this.parts.strategy;
    const parent = this.parts.store.getActor(node);
    return ((parent?.spec as { strategy?: Strategy } | undefined)?.strategy) ?? "one_for_one";
  }
}

function notFound(name: string, what: "builder" | "parent" = "builder"): TroupeError {
  return new TroupeError("NOT_FOUND", `No ${what} named "${name}". See the builders with \`troupe status\`.`, { name });
}

function contextOf(row: ActorRow): { reason?: string | null; lastExit?: { code: number | null; signal: string | null; at: number } | null } | null {
  const snapshot = row.snapshot as { context?: { reason?: string | null; lastExit?: { code: number | null; signal: string | null; at: number } | null } } | null;
  return snapshot?.context ?? null;
}

export { DEFAULT_POLICY };
