/**
 * One builder's whole life (DESIGN §3, §7): spawn, start, stop, restart,
 * done, destroy, reconcile and restart-for-sibling are operations of this
 * class, each run in the builder's own queue, so a builder does one thing at
 * a time. The chart (through `BuilderRecord`) says which moves are legal and
 * is written before anyone hears of a move; the host connection and the
 * deadline timer report back here by events.
 */
import { rmSync } from "node:fs";
import type { Logger } from "pino";
import { addWorktree, connectPtyHost, deleteBranch, launchPtyHost, removeWorktree, type ExitStatus, type HostIdentity, type PtyHostClient } from "../../actors/index.js";
import { nextDeadline, type BuilderEvent } from "../../machines/builder.js";
import type { BuilderSpec, BuilderStatus } from "../../shared/contract.js";
import { TroupeError, errorMessage, isTroupeError } from "../../shared/errors.js";
import { fault } from "../../shared/faults.js";
import { SerialQueue } from "../../shared/serial-queue.js";
import type { ActorRow } from "../../storage/types.js";
import { readExitStatus, stringEnv } from "../process-control.js";
import { agentArgv } from "../profiles.js";
import { AgentLink, killLeftovers, type ProcessFields } from "./agent-link.js";
import { armDeadline } from "./deadline.js";
import type { BuilderEnvironment } from "./environment.js";
import type { HostEvent } from "./host-link.js";
import { lifeLabel, processFields, statusOf, type RowArtifacts } from "./projection.js";
import { BuilderRecord, type Life } from "./record.js";
import { assertNothingToLose, branchIsOurs } from "./worktree-fate.js";

/** A new builder, before its row exists. */
export interface BuilderInit {
  id: string;
  name: string;
  role: string | null;
  parent: { name: string; id: string } | null;
  /** Validated, with the supervisor's policy under the spawn's and `baseCommit` resolved. */
  spec: BuilderSpec;
}

const NO_PROCESS: ProcessFields = { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null };

export class BuilderRuntime {
  readonly id: string;
  readonly name: string;
  readonly log: Logger;
  private readonly link: AgentLink;
  private readonly queue = new SerialQueue();
  /** A launched agent the host has not yet confirmed: not in the row, but still ours to kill. */
  private unconfirmed: ProcessFields | null = null;
  private disarm: () => void = () => undefined;
  private closed = false;

  private constructor(
    private readonly env: BuilderEnvironment,
    private readonly record: BuilderRecord,
    log: Logger,
  ) {
    this.id = record.id;
    this.name = record.name;
    this.log = log;
    this.link = new AgentLink(this.id, this.name, log);
  }

  /** A new builder in `booting.provisioning` (its row is written by `spawn`). */
  static create(env: BuilderEnvironment, init: BuilderInit): BuilderRuntime {
    const at = env.now();
    const row: ActorRow = {
      id: init.id,
      name: init.name,
      role: init.role,
      parent: init.parent?.name ?? null,
      parentId: init.parent?.id ?? null,
      supervisorNode: init.parent?.id ?? "root",
      state: "booting",
      substate: "provisioning",
      snapshot: null,
      machineVersion: 0,
      // Invariant A: every artifact's name is in the row before the artifact exists.
      worktree: env.layout.worktreePath(init.name),
      branch: env.layout.branchName(init.name),
      ptySocket: env.layout.ptySocketPath(init.id),
      pty: null,
      ...NO_PROCESS,
      restarts: 0,
      restartTimes: [],
      spec: init.spec,
      intent: { op: "spawn", step: "row", at },
      createdAt: at,
      updatedAt: at,
      destroyedAt: null,
      lastActivityAt: null,
    };
    const log = logFor(env, row);
    return new BuilderRuntime(env, BuilderRecord.create(env.store, row, { restartType: init.spec.restart }, log), log);
  }

  /** A builder registered around a live pty host whose row was lost (`adopt`); its row is written by `adopt()`. */
  static forOrphan(env: BuilderEnvironment, row: ActorRow): BuilderRuntime {
    const log = logFor(env, row);
    return new BuilderRuntime(env, BuilderRecord.create(env.store, row, { restartType: row.spec.restart, initial: "starting" }, log), log);
  }

  /** A builder restored from its row; `reconcile()` brings it in line with the world. */
  static restore(env: BuilderEnvironment, row: ActorRow): BuilderRuntime {
    const log = logFor(env, row);
    return new BuilderRuntime(env, BuilderRecord.restore(env.store, row, log), log);
  }

  get row(): ActorRow {
    return this.record.row;
  }

  get life(): Life {
    return this.record.life;
  }

  status(): BuilderStatus {
    return statusOf(this.row, this.record.context, this.link.lastOutputAt);
  }

  // ---- operations ----------------------------------------------------------------

  /**
   * Writes the row (invariant A: before the first artifact), makes the
   * worktree and starts the agent; resolves once it is working. A failure is
   * rolled back (nothing left behind) and rethrown saying so.
   */
  async spawn(): Promise<void> {
    const at = this.env.now();
    await this.record.insert("SPAWN", at);
    this.env.emit({ type: "transition", name: this.name, id: this.id, from: "(none)", to: lifeLabel(this.life), event: "SPAWN", at });
    try {
      await this.queue.run(async () => {
        fault("spawn.after-row");
        const { worktree: path, branch } = this.row;
        const made = await addWorktree({ repo: this.env.layout.root, path: path!, branch: branch!, base: this.row.spec.baseCommit! });
        fault("spawn.after-worktree");
        await this.transition({ type: "PROVISIONED", at: this.env.now(), worktree: path!, branch: branch! }, { worktree: path, branch, spec: { ...this.row.spec, branchExisted: made.branchExisted } });
        fault("spawn.after-provisioned");
        await this.start({ firstStart: true });
      });
    } catch (error) {
      this.log.warn({ err: error }, "spawn failed: rolling back");
      await this.queue.run(() => this.teardown({ rollback: true })).catch((rollbackError) => this.log.error({ err: rollbackError }, "spawn rollback failed"));
      this.shutdown();
      const message = `Spawn of "${this.name}" failed and was rolled back (nothing left behind): `;
      if (isTroupeError(error)) throw new TroupeError(error.code, message + error.message, { ...error.details, name: this.name }, { cause: error });
      throw new TroupeError("SPAWN_FAILED", message + (error as Error).message, { name: this.name }, { cause: error });
    }
  }

  /** Writes the row of an orphan (`forOrphan`) and adopts its live host. */
  async adopt(): Promise<void> {
    await this.record.insert("ADOPT", this.env.now());
    await this.queue.run(() => this.start({ firstStart: false }));
  }

  /** Stops the agent gracefully: working → completed; a pending restart is cancelled. Idempotent. */
  stop(): Promise<void> {
    return this.queue.run(async () => {
      const { state, substate } = this.life;
      if (state === "working") {
        // Write-ahead: a stop interrupted by a crash is finished as a stop on the next start.
        await this.record.persist({ intent: { op: "stop", step: "killing", at: this.env.now() } }, this.env.now());
        await this.terminateAgent();
        fault("stop.after-kill");
        await this.transition({ type: "STOPPED", at: this.env.now() }, { intent: null });
      } else if (state === "booting" && substate === "backoff") {
        await this.transition({ type: "STOPPED", at: this.env.now() });
      } else if (state === "booting") {
        throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is starting (${substate}); stop it once it is working, or destroy it.`, { name: this.name });
      }
    });
  }

  /** Starts a completed or zombie builder again in its worktree (a working one is stopped first). */
  restart(): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state === "working") {
        await this.terminateAgent();
        await this.transition({ type: "STOPPED", at: this.env.now() });
      }
      if (this.life.state === "booting") throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is already starting (${this.life.substate}).`, { name: this.name });
      await this.transition({ type: "RESTART", at: this.env.now() });
      fault("restart.after-transition");
      await this.start({ firstStart: false });
    });
  }

  /** `worker_done` from the agent: it is stopped gracefully and the builder is completed. */
  done(): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state !== "working") return;
      await this.terminateAgent();
      await this.transition({ type: "DONE", at: this.env.now() });
    });
  }

  /**
   * Tears the builder down (agent, host, worktree, branch) to its tombstone.
   * Without `force`, work that exists nowhere else is refused first, and
   * nothing changes.
   */
  destroy(options: { force: boolean }): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state === "destroyed") return;
      if (!options.force && this.life.state !== "destroying") await assertNothingToLose(this.row, this.env.layout.root);
      await this.teardown({ rollback: false });
    });
  }

  /**
   * Brings a restored builder in line with the world (DESIGN §7 table).
   * Never kills a builder that has a live, matching pty host; never
   * re-provisions a tombstone. One log line per decision.
   */
  reconcile(): Promise<void> {
    return this.queue.run(async () => {
      const { state, substate } = this.life;
      const decide = (decision: string, extra: object = {}) => this.log.info({ decision, state, substate, ...extra }, "reconcile");
      switch (state) {
        case "working": {
          if (this.row.intent?.op === "stop") {
            decide("finish the interrupted stop");
            await this.terminateAgent();
            return this.transition({ type: "STOPPED", at: this.env.now() }, { intent: null });
          }
          const host = await this.link.adoptable(this.row.ptySocket);
          if (host) {
            decide("adopt live pty host", { hostPid: host.identity.hostPid, pid: host.identity.pid });
            return this.resumeWorking(host);
          }
          decide("host gone: treat as an exit");
          return this.resolveLostAgent();
        }
        case "booting":
          if (substate === "backoff") {
            decide("re-arm restart deadline");
            return this.rearm();
          }
          if (substate === "starting") {
            decide("finish the interrupted start");
            return this.start({ firstStart: false }).catch(() => undefined);
          }
          // provisioning: the spawn's caller is gone; roll it back so nothing half-made stays.
          decide("roll back interrupted spawn");
          return this.teardown({ rollback: true });
        case "completed":
        case "zombie": {
          const host = await this.link.adoptable(this.row.ptySocket);
          if (host) {
            host.close();
            decide("stop the agent of a finished builder", { hostPid: host.identity.hostPid });
            await this.terminateAgent();
          } else {
            await this.killLeftovers();
          }
          return;
        }
        case "destroying":
          decide("resume teardown");
          return this.teardown({ rollback: this.row.intent?.op === "rollback" });
        case "destroyed":
          return;
      }
    });
  }

  /**
   * Restarted because a sibling died under a one_for_all or rest_for_one
   * supervisor (DESIGN §4): not counted against this builder's intensity. A
   * temporary builder is stopped instead, never restarted.
   */
  restartForSibling(cause: string): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state !== "working") return;
      await this.terminateAgent();
      const at = this.env.now();
      if (this.row.spec.restart === "temporary") return this.transition({ type: "STOPPED", at });
      await this.transition({ type: "SIBLING_RESTART", at, cause });
      await this.start({ firstStart: false });
    });
  }

  /** `doctor --fix`: the agent of a finished builder still runs; end it. */
  endStrayAgent(): Promise<void> {
    return this.queue.run(async () => void (await this.terminateAgent()));
  }

  /** `doctor --fix`: the row says working but host and agent are gone; treat it as an exit. */
  resolveLost(): Promise<void> {
    return this.queue.run(() => this.resolveLostAgent());
  }

  /** Resolves once every operation queued so far has settled. */
  drain(): Promise<void> {
    return this.queue.run(async () => undefined);
  }

  /** Stops timers and connections of this runtime; agents keep running for the next supervisor. */
  shutdown(): void {
    this.closed = true;
    this.disarm();
    this.link.detach();
    this.record.stop();
  }

  // ---- mail ---------------------------------------------------------------------

  /** When the terminal last printed (its start counts), or null when no terminal is attached. */
  terminalLastOutputAt(): number | null {
    return this.link.current && this.row.pty !== false ? this.link.lastOutputAt : null;
  }

  /** Types into the agent's terminal (mail delivery). */
  writeTerminal(data: string): void {
    this.link.write(data, this.env.now());
  }

  // ---- moves (called inside the queue) ------------------------------------------------

  /** A move of the chart, durable; then logged, told, and the deadline re-armed. */
  private async transition(event: BuilderEvent, artifacts: RowArtifacts = {}): Promise<void> {
    const { from, to, changed } = await this.record.transition(event, artifacts);
    if (changed) {
      this.log.info({ from: lifeLabel(from), to: lifeLabel(to), event: event.type }, "transition");
      this.env.emit({ type: "transition", name: this.name, id: this.id, from: lifeLabel(from), to: lifeLabel(to), event: event.type, at: event.at });
      if (from.state !== to.state) this.env.lifeChanged(this, from.state, event);
    }
    this.rearm();
  }

  /**
   * booting.starting → working: launches a pty host (or adopts one already
   * serving this builder: one agent per worktree, always) and waits until it
   * confirmed the agent runs. A failure is thrown after the start was
   * recorded as failed, unless `firstStart` (then the spawn rolls back).
   */
  private async start(options: { firstStart: boolean }): Promise<void> {
    const adopted = await this.link.adoptable(this.row.ptySocket, { runningOnly: true });
    if (adopted) return this.markStarted(adopted, "adopted");
    const { spec } = this.row;
    const profile = this.env.profileOf(spec);
    const resume = this.record.context.restarts > 0;
    const socketPath = this.env.layout.ptySocketPath(this.id);
    rmSync(this.env.layout.exitStatusPath(this.id), { force: true });
    if (this.row.ptySocket !== socketPath) await this.record.persist({ ptySocket: socketPath }, this.env.now());
    let client: PtyHostClient;
    let ptyError: string | null;
    try {
      const started = await launchPtyHost(
        {
          builderId: this.id,
          name: this.name,
          cmd: agentArgv(profile, spec.cmd, spec.task, resume),
          cwd: this.row.worktree ?? this.env.layout.root,
          env: { ...stringEnv(process.env), ...profile.env, ...spec.env, ...(spec.task !== undefined ? { TROUPE_TASK: spec.task } : {}), ...this.env.agentEnv(this.row) },
          pty: spec.pty ?? "auto",
          socketPath,
          transcriptPath: this.env.layout.transcriptPath(this.name, this.id),
          exitStatusPath: this.env.layout.exitStatusPath(this.id),
          logPath: this.env.layout.hostLogPath(this.name),
          collectTimeoutMs: this.env.timings.collectTimeoutMs,
        },
        { nodePath: this.env.nodePath, startTimeoutMs: this.env.timings.hostStartTimeoutMs, spare: this.env.takeSpareHost() },
      );
      this.env.bootSpareHost();
      // From here until STARTED is durable the agent runs but no row names it: a
      // crash leaves a live host at the recorded socket, which the next start adopts.
      this.unconfirmed = { pid: started.pid, pidStartTime: started.pidStartTime, hostPid: started.hostPid, hostStartTime: started.hostStartTime };
      fault(options.firstStart ? "spawn.after-host" : "restart.after-host");
      client = await connectPtyHost(socketPath, { timeoutMs: this.env.timings.hostStartTimeoutMs });
      ptyError = started.ptyError?.message ?? null;
      if (ptyError) this.log.warn({ ptyError: started.ptyError }, "node-pty unavailable: running on pipes");
    } catch (error) {
      this.log.warn({ err: error }, "agent start failed");
      if (options.firstStart) throw error;
      await this.killLeftovers();
      await this.transition({ type: "START_FAILED", at: this.env.now(), error: errorMessage(error), jitter: this.env.random() }, { intent: null });
      await this.noticeIfZombie();
      throw error;
    }
    await this.markStarted(client, "launched", { ...spec, ptyError });
    if (spec.task !== undefined && profile.task === "pty" && !resume) client.write(`${spec.task}\r`);
  }

  private async markStarted(client: PtyHostClient, how: "launched" | "adopted", spec?: BuilderSpec): Promise<void> {
    const identity = client.identity;
    // What the agent printed before this connection was up is in the host's
    // scrollback: subscribers of a start they caused get it too.
    this.attachHost(client, { replay: how === "launched" });
    await this.transition(startedEvent(identity, this.env.now()), { intent: null, ...(spec ? { spec } : {}) });
    this.unconfirmed = null;
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid, pty: identity.pty, how }, "agent running");
    this.env.terminalUp(this);
    if (identity.exit) void this.queue.run(() => this.handleExit(identity.exit!, client));
  }

  /** For reconcile: an adopted host of a builder that is already working (no move). */
  private async resumeWorking(client: PtyHostClient): Promise<void> {
    this.attachHost(client);
    const identity = client.identity;
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid }, "adopted live pty host");
    if (identity.exit) return this.handleExit(identity.exit, client);
    this.rearm();
    this.env.terminalUp(this);
  }

  private attachHost(client: PtyHostClient, options: { replay?: boolean } = {}): void {
    this.link.attach(client, this.env.now(), (event, from) => this.onHost(event, from));
    if (options.replay && client.scrollback) this.env.emit({ type: "output", name: this.name, id: this.id, data: client.scrollback });
  }

  private onHost(event: HostEvent, client: PtyHostClient): void {
    const failed = (what: string) => (error: unknown) => this.log.error({ err: error }, what);
    switch (event.type) {
      case "output":
        this.link.lastOutputAt = this.env.now();
        this.env.emit({ type: "output", name: this.name, id: this.id, data: event.data });
        if (this.life.substate === "stalled") void this.queue.run(() => this.noteActivity()).catch(failed("activity"));
        return;
      case "exit":
        void this.queue.run(() => this.handleExit(event.status, client)).catch(failed("exit handling failed"));
        return;
      case "lost":
        // The host vanished without reporting an exit: the agent is lost.
        void this.queue
          .run(async () => {
            if (client !== this.link.current) return;
            this.link.detach();
            if (this.life.state === "working") await this.resolveLostAgent();
          })
          .catch(failed("host loss handling failed"));
        return;
    }
  }

  private async handleExit(status: ExitStatus, client: PtyHostClient): Promise<void> {
    if (client !== this.link.current) return; // an exit we caused (stop, destroy) is handled by its caller
    if (this.life.state !== "working") return;
    this.link.release();
    // Collected before closing: a host whose exit status nobody collects lingers until its collect timeout.
    await client.collect().catch(() => undefined);
    client.close();
    await this.exitTransition(status);
  }

  /** The agent is gone and nobody saw it exit: its exit status file, if any, says how. */
  private async resolveLostAgent(): Promise<void> {
    await this.killLeftovers();
    const status = readExitStatus(this.env.layout.exitStatusPath(this.id)) ?? { code: null, signal: "LOST" };
    this.log.warn({ status }, "agent gone");
    await this.exitTransition(status);
  }

  private async exitTransition(status: Pick<ExitStatus, "code" | "signal">): Promise<void> {
    await this.transition({ type: "EXITED", at: this.env.now(), code: status.code, signal: status.signal, jitter: this.env.random() }, { intent: null });
    this.log.info({ code: status.code, signal: status.signal, next: this.life }, "agent exited");
    if (this.life.state === "completed" && status.code === 0 && !this.record.context.doneReported) {
      await this.env.notice(this, "contract_violation", "exited 0 without sending worker_done");
    }
    await this.noticeIfZombie();
  }

  private async noticeIfZombie(): Promise<void> {
    if (this.life.state === "zombie") await this.env.notice(this, "worker_died", this.record.context.reason ?? "unknown");
  }

  /** Output seen: refresh the stall deadlines (and leave `working.stalled`). */
  private async noteActivity(): Promise<void> {
    if (this.life.state !== "working") return;
    await this.transition({ type: "OUTPUT", at: Math.max(this.link.lastOutputAt, this.record.context.lastActivityAt ?? 0) });
  }

  // ---- deadlines -------------------------------------------------------------------

  private rearm(): void {
    this.disarm();
    this.disarm = this.closed ? () => undefined : armDeadline(this.record.snapshot, this.env.now(), () => {
      void this.queue.run(() => this.onDeadline()).catch((error) => this.log.error({ err: error }, "deadline handling failed"));
    });
  }

  private async onDeadline(): Promise<void> {
    // Asked again at run time: the builder may have moved on since the timer was armed.
    const deadline = nextDeadline(this.record.snapshot);
    const at = this.env.now();
    if (!deadline || at < deadline.at) return this.rearm();
    const { lastActivityAt } = this.record.context;
    const freshOutput = this.link.lastOutputAt > (lastActivityAt ?? 0);
    switch (deadline.kind) {
      case "restart":
        await this.transition({ type: "BACKOFF_ELAPSED", at });
        fault("restart.after-transition");
        await this.start({ firstStart: false }).catch(() => undefined);
        return;
      case "stall":
        if (freshOutput) return this.noteActivity();
        return this.transition({ type: "STALL_CHECK", at });
      case "zombie":
        if (freshOutput) return this.noteActivity();
        this.log.warn({ lastActivityAt }, "agent silent past zombieMs: killing it");
        await this.terminateAgent();
        await this.transition({ type: "STALL_KILLED", at: this.env.now() });
        await this.noticeIfZombie();
        return;
    }
  }

  // ---- ending the agent and tearing down ---------------------------------------------

  private async terminateAgent(): Promise<void> {
    await this.link.terminate(this.processes(), this.row.ptySocket, this.env.timings.killTimeoutMs);
    await this.killUnconfirmed();
  }

  private async killLeftovers(): Promise<void> {
    await killLeftovers(this.processes(), this.row.ptySocket, this.env.timings.killTimeoutMs);
    await this.killUnconfirmed();
  }

  private async killUnconfirmed(): Promise<void> {
    if (this.unconfirmed) await killLeftovers(this.unconfirmed, null, this.env.timings.killTimeoutMs);
    this.unconfirmed = null;
  }

  private processes(): ProcessFields {
    return processFields(this.record.context.process);
  }

  /**
   * DESIGN §3/§7: destroying.stopping → destroying.removingWorktree →
   * destroyed. Each step is persisted, so a crash mid-way resumes here on the
   * next start, and `destroyed` is entered only once process, host and
   * worktree are gone.
   */
  private async teardown(options: { rollback: boolean }): Promise<void> {
    const op = options.rollback ? "rollback" : "destroy";
    if (this.life.state !== "destroying") {
      await this.transition({ type: "DESTROY", at: this.env.now() }, { intent: { op, step: "stopping", at: this.env.now() } });
      fault("destroy.after-destroying");
    }
    if (this.life.substate === "stopping") {
      await this.terminateAgent();
      fault("destroy.after-kill");
      await this.transition({ type: "PROCESS_GONE", at: this.env.now() }, { intent: { op, step: "removing-worktree", at: this.env.now() } });
      fault("destroy.after-process-gone");
    }
    const repo = this.env.layout.root;
    if (this.row.worktree) await removeWorktree({ repo, path: this.row.worktree, force: true });
    fault("destroy.after-worktree");
    if (this.row.branch && (await branchIsOurs(this.row, repo, options))) await deleteBranch(repo, this.row.branch);
    fault("destroy.after-branch");
    await this.transition({ type: "WORKTREE_REMOVED", at: this.env.now() }, { intent: null, ptySocket: null });
  }
}

function startedEvent(identity: HostIdentity, at: number): BuilderEvent {
  return { type: "STARTED", at, pid: identity.pid, pty: identity.pty, pidStartTime: identity.pidStartTime, hostPid: identity.hostPid, hostStartTime: identity.hostStartTime };
}

function logFor(env: BuilderEnvironment, row: ActorRow): Logger {
  return env.logger.child({ actor: row.name, actorId: row.id });
}
