import { rmSync } from "node:fs";
import { createActor, type Actor } from "xstate";
import type { Logger } from "pino";
import { builderMachine, lifeStateOf, nextDeadline, BUILDER_MACHINE_VERSION, type BuilderEvent } from "../machines/builder.js";
import { connectPtyHost, launchPtyHost, type PtyHostClient, type SpareHost } from "../actors/index.js";
import type { ActorRow, LifeState, Store } from "../storage/types.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { isProcessAlive } from "../shared/proc.js";
import { killTree, readExitStatus, stringEnv, type ExitStatus } from "./process-control.js";
import { statusOf } from "./status.js";
import { fault } from "../shared/faults.js";
import type { WorkspaceLayout } from "./layout.js";
import { agentArgv, type AgentProfile } from "./profiles.js";
import type { BuilderStatus, RestartType, SupervisorEvent, SupervisorTimings } from "./types.js";

export type BuilderActor = Actor<typeof builderMachine>;

/** What a runtime needs from its supervisor. */
export interface RuntimeHost {
  store: Store;
  logger: Logger;
  layout: WorkspaceLayout;
  timings: SupervisorTimings;
  nodePath: string;
  now(): number;
  random(): number;
  emit(event: SupervisorEvent): void;
  profileOf(row: ActorRow): AgentProfile;
  /** Called after each persisted change of life state (the supervisor applies its strategy there). */
  afterTransition(runtime: BuilderRuntime, from: LifeState, event: BuilderEvent): void;
  /** Extra environment for an agent process (identity for mail). */
  agentEnv(row: ActorRow): Record<string, string>;
  /** The builder's terminal came up: mail waiting for it can be typed. */
  terminalUp(runtime: BuilderRuntime): void;
  /** The pre-booted pty host to use for the next launch, if any (it is then no longer spare). */
  takeSpareHost(): SpareHost | null;
  /** Boots a new spare pty host for the launch after this one. */
  replenishSpareHost(): void;
  /** Tells the builder's parent (nearest live ancestor, else the operator), durably. */
  notice(runtime: BuilderRuntime, kind: "worker_died" | "contract_violation", reason: string): Promise<void>;
}

/**
 * One builder: an XState actor (the statechart decides which moves are legal),
 * the durable row that mirrors it, and the connection to its pty host.
 * Every operation runs through `run()` so a builder handles one thing at a
 * time; every transition is persisted before anyone is told of it.
 */
export class BuilderRuntime {
  readonly id: string;
  readonly name: string;
  private readonly actor: BuilderActor;
  readonly log: Logger;
  private host: PtyHostClient | null = null;
  /** Bumped whenever the current host connection is dropped: late events of an old one are ignored. */
  private hostGeneration = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private lastOutputAt = 0;
  private closed = false;

  private constructor(
    private readonly sup: RuntimeHost,
    public row: ActorRow,
    actor: BuilderActor,
  ) {
    this.id = row.id;
    this.name = row.name;
    this.actor = actor;
    this.log = sup.logger.child({ actor: row.name, actorId: row.id });
    // An error inside the actor must never become an uncaughtException (DESIGN §3).
    this.actor.subscribe({ error: (error) => this.log.error({ err: error }, "builder actor error") });
  }

  /** A new builder in `booting.provisioning`; the caller inserts `row`. */
  static create(sup: RuntimeHost, row: ActorRow, input: { restartType: RestartType; policy: object; initial?: "provisioning" | "starting" }): BuilderRuntime {
    const actor = createActor(builderMachine, {
      input: { id: row.id, name: row.name, restartType: input.restartType, policy: input.policy, at: row.createdAt, ...(input.initial ? { initial: input.initial } : {}) },
    });
    actor.start();
    const runtime = new BuilderRuntime(sup, row, actor);
    const life = lifeStateOf(actor.getSnapshot());
    runtime.row = { ...row, state: life.state, substate: life.substate, snapshot: actor.getPersistedSnapshot(), machineVersion: BUILDER_MACHINE_VERSION };
    return runtime;
  }

  /** A builder restored from its persisted snapshot (its deadlines are re-armed by `reconcile`). */
  static restore(sup: RuntimeHost, row: ActorRow): BuilderRuntime {
    const spec = row.spec as { restart?: RestartType; policy?: object };
    const actor = createActor(builderMachine, {
      snapshot: row.snapshot as never,
      input: { id: row.id, name: row.name, restartType: spec.restart ?? "transient", policy: spec.policy ?? {}, at: row.createdAt },
    });
    actor.start();
    return new BuilderRuntime(sup, row, actor);
  }

  get life(): { state: LifeState; substate: string | null } {
    return lifeStateOf(this.actor.getSnapshot());
  }

  get context() {
    return this.actor.getSnapshot().context;
  }

  /** Runs `fn` after every operation queued before it, whatever their outcome. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Persists a row change that is not a transition (intent steps, artifacts). */
  async persist(patch: Partial<ActorRow>): Promise<void> {
    const at = this.sup.now();
    await this.sup.store.write((tx) => tx.updateActor(this.id, { ...patch, updatedAt: at }));
    this.row = { ...this.row, ...patch, updatedAt: at };
  }

  /**
   * Sends `event` to the statechart. An event the chart does not accept in the
   * current state is refused (ILLEGAL_TRANSITION) and changes nothing; an
   * accepted one is persisted (row + history) before subscribers hear of it.
   */
  async transition(event: BuilderEvent, patch: Partial<ActorRow> = {}): Promise<void> {
    const before = this.actor.getSnapshot();
    if (!before.can(event)) {
      const life = lifeStateOf(before);
      throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is ${life.state}${life.substate ? `.${life.substate}` : ""}; ${event.type} is not allowed there.`, { name: this.name, state: life.state, event: event.type });
    }
    const from = lifeStateOf(before);
    this.actor.send(event);
    const after = this.actor.getSnapshot();
    const to = lifeStateOf(after);
    const ctx = after.context;
    const at = event.at;
    const changed = from.state !== to.state || from.substate !== to.substate;
    const update: Partial<ActorRow> = {
      ...patch,
      state: to.state,
      substate: to.substate,
      snapshot: this.actor.getPersistedSnapshot(),
      machineVersion: BUILDER_MACHINE_VERSION,
      restarts: ctx.restarts,
      restartTimes: [...ctx.restartTimes],
      lastActivityAt: ctx.lastActivityAt,
      updatedAt: at,
      ...(to.state === "destroyed" ? { destroyedAt: at } : {}),
    };
    await this.sup.store.write((tx) => {
      tx.updateActor(this.id, update);
      if (changed) tx.appendHistory({ actorId: this.id, name: this.name, from: fmt(from), to: fmt(to), event: event.type, at });
    });
    // Only what is durable is reported, status included.
    this.row = { ...this.row, ...update };
    if (changed) {
      this.log.info({ from: fmt(from), to: fmt(to), event: event.type }, "transition");
      this.sup.emit({ type: "transition", name: this.name, id: this.id, from: fmt(from), to: fmt(to), event: event.type, at });
      if (from.state !== to.state) this.sup.afterTransition(this, from.state, event);
    }
    this.armTimer();
  }

  status(): BuilderStatus {
    return statusOf(this.row, this.actor.getSnapshot().context, this.lastOutputAt);
  }

  // ---- starting ---------------------------------------------------------

  /** booting.provisioning → booting.starting: the worktree exists and is recorded. */
  async provision(worktree: { path: string; branch: string }, patch: Partial<ActorRow> = {}): Promise<void> {
    await this.transition({ type: "PROVISIONED", at: this.sup.now(), worktree: worktree.path, branch: worktree.branch }, { ...patch, worktree: worktree.path, branch: worktree.branch });
  }

  /**
   * booting.starting → working: launches a pty host (or adopts one already
   * serving this builder: one agent per worktree, always) and waits until it
   * confirmed the agent runs. A failure is thrown after the start was recorded
   * as failed unless `firstStart` (then the caller rolls the spawn back).
   */
  async start(options: { firstStart: boolean }): Promise<void> {
    const adopted = await this.tryAdoptHost({ runningOnly: true });
    if (adopted) {
      await this.markStarted(adopted, "adopted");
      return;
    }
    const row = this.row;
    const profile = this.sup.profileOf(row);
    const spec = row.spec as { cmd?: string[]; task?: string; env?: Record<string, string>; pty?: "auto" | "on" | "off" };
    const resume = this.context.restarts > 0;
    const argv = agentArgv(profile, spec.cmd, spec.task, resume);
    const socketPath = this.sup.layout.ptySocketPath(this.id);
    rmSync(this.sup.layout.exitStatusPath(this.id), { force: true });
    if (row.ptySocket !== socketPath) await this.persist({ ptySocket: socketPath });
    let client: PtyHostClient;
    try {
      const started = await launchPtyHost(
        {
          builderId: this.id,
          name: this.name,
          cmd: argv,
          cwd: row.worktree ?? this.sup.layout.root,
          env: { ...stringEnv(process.env), ...profile.env, ...(spec.env ?? {}), ...(spec.task !== undefined ? { TROUPE_TASK: spec.task } : {}), ...this.sup.agentEnv(row) },
          pty: spec.pty ?? "auto",
          socketPath,
          transcriptPath: this.sup.layout.transcriptPath(this.name, this.id),
          exitStatusPath: this.sup.layout.exitStatusPath(this.id),
          logPath: this.sup.layout.hostLogPath(this.name),
          collectTimeoutMs: this.sup.timings.collectTimeoutMs,
        },
        { nodePath: this.sup.nodePath, startTimeoutMs: this.sup.timings.hostStartTimeoutMs, spare: this.sup.takeSpareHost() },
      );
      this.sup.replenishSpareHost();
      // A crash from here until STARTED is persisted leaves a live host at the
      // recorded socket: the next start adopts it (one agent per worktree).
      fault(options.firstStart ? "spawn.after-host" : "restart.after-host");
      this.row = { ...this.row, hostPid: started.hostPid, hostStartTime: started.hostStartTime, pid: started.pid, pidStartTime: started.pidStartTime };
      client = await connectPtyHost(socketPath, { timeoutMs: this.sup.timings.hostStartTimeoutMs });
      if (started.ptyError) this.log.warn({ ptyError: started.ptyError }, "node-pty unavailable: running on pipes");
      this.row = { ...this.row, spec: { ...this.row.spec, ptyError: started.ptyError?.message ?? null } };
    } catch (error) {
      this.log.warn({ err: error }, "agent start failed");
      if (options.firstStart) throw error;
      await this.killLeftovers();
      await this.transition({ type: "START_FAILED", at: this.sup.now(), error: errorMessage(error), jitter: this.sup.random() }, { intent: null, pid: null, hostPid: null });
      await this.noticeIfZombie();
      throw error;
    }
    await this.markStarted(client, "launched");
    if (spec.task !== undefined && profile.task === "pty" && !resume) client.write(`${spec.task}\r`);
  }

  private async markStarted(client: PtyHostClient, how: "launched" | "adopted"): Promise<void> {
    const identity = client.identity;
    // What the agent printed before this connection was up is in the host's
    // scrollback: subscribers of a start they caused get it too.
    this.attachHost(client, { replay: how === "launched" });
    await this.transition(
      { type: "STARTED", at: this.sup.now(), pid: identity.pid, pty: identity.pty },
      { pid: identity.pid, pidStartTime: identity.pidStartTime, hostPid: identity.hostPid, hostStartTime: identity.hostStartTime, pty: identity.pty, intent: null },
    );
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid, pty: identity.pty, how }, "agent running");
    this.sup.terminalUp(this);
    if (identity.exit) void this.run(() => this.handleExit(identity.exit!, client));
  }

  // ---- the host connection -------------------------------------------------

  private attachHost(client: PtyHostClient, options: { replay?: boolean } = {}): void {
    const generation = ++this.hostGeneration;
    this.host = client;
    this.lastOutputAt = Math.max(this.lastOutputAt, this.sup.now());
    if (options.replay && client.scrollback) this.sup.emit({ type: "output", name: this.name, id: this.id, data: client.scrollback });
    client.on("output", (data: string) => {
      if (generation !== this.hostGeneration) return;
      this.lastOutputAt = this.sup.now();
      this.sup.emit({ type: "output", name: this.name, id: this.id, data });
      if (this.life.substate === "stalled") void this.run(() => this.noteActivity()).catch((error) => this.log.error({ err: error }, "activity"));
    });
    client.on("exit", (status: ExitStatus) => {
      if (generation !== this.hostGeneration) return;
      void this.run(() => this.handleExit(status, client)).catch((error) => this.log.error({ err: error }, "exit handling failed"));
    });
    client.on("close", () => {
      if (generation !== this.hostGeneration || this.closed) return;
      // The host vanished without reporting an exit: the agent is lost.
      void this.run(async () => {
        if (generation !== this.hostGeneration) return;
        this.detachHost();
        if (this.life.state !== "working") return;
        await this.killLeftovers();
        const status = readExitStatus(this.sup.layout.exitStatusPath(this.id)) ?? { code: null, signal: "LOST" };
        await this.exitTransition(status);
      }).catch((error) => this.log.error({ err: error }, "host loss handling failed"));
    });
  }

  /** Stops listening to the host's connection and closes it. */
  private detachHost(): PtyHostClient | null {
    const client = this.releaseHost();
    client?.close();
    return client;
  }

  /** Stops listening to the host's connection, left open for a last request (stop, collect). */
  private releaseHost(): PtyHostClient | null {
    const client = this.host;
    this.hostGeneration++;
    this.host = null;
    return client;
  }

  /**
   * A live host already serving this incarnation (DESIGN §7: adopt, never
   * start a second agent). With `runningOnly`, a host whose agent already
   * exited is not adopted: its status is collected so that it goes away.
   */
  async tryAdoptHost(options: { runningOnly?: boolean } = {}): Promise<PtyHostClient | null> {
    const socket = this.row.ptySocket;
    if (!socket) return null;
    let client: PtyHostClient;
    try {
      client = await connectPtyHost(socket, { timeoutMs: 2000 });
    } catch {
      return null;
    }
    if (client.identity.builderId !== this.id) {
      client.close();
      return null;
    }
    if (options.runningOnly && client.identity.exit) {
      await client.collect().catch(() => undefined);
      client.close();
      return null;
    }
    return client;
  }

  private async handleExit(status: ExitStatus, client: PtyHostClient): Promise<void> {
    if (client !== this.host) return; // an exit we caused (stop, destroy) is handled by its caller
    if (this.life.state !== "working") return;
    // Collect before closing: a host whose exit status nobody collects lingers,
    // holding its memory, until its collect timeout.
    this.releaseHost();
    try {
      await client.collect();
    } catch {
      // the host may already be gone; its exit status file still tells
    }
    client.close();
    await this.exitTransition(status);
  }

  private async exitTransition(status: ExitStatus): Promise<void> {
    const at = this.sup.now();
    await this.transition({ type: "EXITED", at, code: status.code, signal: status.signal, jitter: this.sup.random() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null, intent: null });
    this.log.info({ code: status.code, signal: status.signal, next: this.life }, "agent exited");
    const ctx = this.context;
    if (this.life.state === "completed" && status.code === 0 && !ctx.doneReported) {
      await this.sup.notice(this, "contract_violation", "exited 0 without sending worker_done");
    }
    await this.noticeIfZombie();
  }

  private async noticeIfZombie(): Promise<void> {
    if (this.life.state !== "zombie") return;
    await this.sup.notice(this, "worker_died", this.context.reason ?? "unknown");
  }

  /** Output seen: refresh the stall deadlines (and leave `working.stalled`). */
  private async noteActivity(): Promise<void> {
    if (this.life.state !== "working") return;
    const at = Math.max(this.lastOutputAt, this.context.lastActivityAt ?? 0);
    await this.transition({ type: "OUTPUT", at });
  }

  // ---- deadlines ---------------------------------------------------------

  armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    const deadline = nextDeadline(this.actor.getSnapshot());
    if (!deadline) return;
    const delay = Math.min(Math.max(0, deadline.at - this.sup.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run(() => this.onDeadline()).catch((error) => this.log.error({ err: error }, "deadline handling failed"));
    }, delay);
  }

  private async onDeadline(): Promise<void> {
    const deadline = nextDeadline(this.actor.getSnapshot());
    const at = this.sup.now();
    if (!deadline || at < deadline.at) return this.armTimer();
    const ctx = this.context;
    const freshOutput = this.lastOutputAt > (ctx.lastActivityAt ?? 0);
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
        this.log.warn({ lastActivityAt: ctx.lastActivityAt }, "agent silent past zombieMs: killing it");
        await this.terminateAgent();
        await this.transition({ type: "STALL_KILLED", at: this.sup.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null });
        await this.noticeIfZombie();
        return;
    }
  }

  // ---- stopping and teardown --------------------------------------------------

  /**
   * Ends the agent's whole process tree (SIGTERM, then SIGKILL after
   * killTimeoutMs) and its host, through the host when it answers and by
   * recorded pid (checked against its start time) when it does not.
   */
  async terminateAgent(): Promise<ExitStatus | null> {
    // Released, not closed: the host is asked to stop the agent, then collected.
    const client = this.releaseHost() ?? (await this.tryAdoptHost());
    let status: ExitStatus | null = null;
    if (client) {
      try {
        status = await client.stop({ killTimeoutMs: this.sup.timings.killTimeoutMs });
      } catch (error) {
        this.log.warn({ err: error }, "host did not stop the agent; killing by pid");
      }
      try {
        await client.collect();
      } catch {
        // gone already
      }
      client.close();
    }
    await this.killLeftovers();
    return status;
  }

  /** Kills the recorded agent and host processes if they still run (by pid + start time, never by name). */
  async killLeftovers(): Promise<void> {
    const { pid, pidStartTime, hostPid, hostStartTime } = this.row;
    if (pid && isProcessAlive(pid, pidStartTime)) await killTree(pid, pidStartTime, this.sup.timings.killTimeoutMs);
    if (hostPid && isProcessAlive(hostPid, hostStartTime)) await killTree(hostPid, hostStartTime, this.sup.timings.killTimeoutMs);
    if (this.row.ptySocket) rmSync(this.row.ptySocket, { force: true });
  }

  /** Restore-time: no timers nor connections of this runtime survive `close()`. */
  shutdown(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.detachHost();
    this.actor.stop();
  }

  adoptedHost(): PtyHostClient | null {
    return this.host;
  }

  /** For reconcile: attach an adopted host without a transition (the builder is already working). */
  async resumeWorking(client: PtyHostClient): Promise<void> {
    this.attachHost(client);
    const identity = client.identity;
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid }, "adopted live pty host");
    if (identity.exit) return this.handleExit(identity.exit, client);
    this.armTimer();
    this.sup.terminalUp(this);
  }

  /** When the terminal last printed (its start counts), or null when no terminal is attached. */
  terminalLastOutputAt(): number | null {
    return this.host && this.row.pty !== false ? this.lastOutputAt : null;
  }

  /** Types into the agent's terminal (mail delivery). */
  writeTerminal(data: string): void {
    if (!this.host) throw new TroupeError("HOST_UNREACHABLE", `Builder "${this.name}" has no live terminal.`, { name: this.name });
    this.host.write(data);
    this.lastOutputAt = Math.max(this.lastOutputAt, this.sup.now());
  }

  /** For reconcile: the host is gone while the row says working. */
  async resolveLostAgent(): Promise<void> {
    await this.killLeftovers();
    const status = readExitStatus(this.sup.layout.exitStatusPath(this.id)) ?? { code: null, signal: "LOST" };
    this.log.warn({ status }, "agent gone while the supervisor was away");
    await this.exitTransition(status);
  }
}

function fmt(life: { state: string; substate: string | null }): string {
  return life.substate ? `${life.state}.${life.substate}` : life.state;
}

function errorMessage(error: unknown): string {
  return isTroupeError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
}

