/**
 * The steps a builder's operations are made of: each move of the chart made
 * durable and told, starting and ending the agent, following its host and its
 * deadline, tearing down. Called only from inside the builder's queue (its
 * operations, in runtime.ts); host and timer events queue themselves there.
 */
import { rmSync } from "node:fs";
import type { Logger } from "pino";
import { connectPtyHost, deleteBranch, launchPtyHost, removeWorktree, type ExitStatus, type HostIdentity, type PtyHostClient } from "../../actors/index.js";
import { nextDeadline, type BuilderEvent } from "../../machines/builder.js";
import type { BuilderSpec } from "../../shared/contract.js";
import { errorMessage } from "../../shared/errors.js";
import { fault } from "../../shared/faults.js";
import { readExitStatus, stringEnv } from "../process-control.js";
import { agentArgv } from "../profiles.js";
import { AgentLink, killLeftovers, type ProcessFields } from "./agent-link.js";
import { armDeadline } from "./deadline.js";
import type { BuilderEnvironment, NoticeDetail } from "./environment.js";
import { deathInWords, lastLines } from "./death.js";
import { textTranscriptPath } from "../../shared/layout.js";
import type { HostEvent } from "./host-link.js";
import { lifeLabel, processFields, type RowArtifacts } from "./projection.js";
import type { BuilderRecord } from "./record.js";
import type { BuilderRuntime } from "./runtime.js";
import { branchIsOurs } from "./worktree-fate.js";

/** How much of what a dead agent showed its worker_died mail quotes. */
const OUTPUT_TAIL_LINES = 10;

export class BuilderSteps {
  readonly link: AgentLink;
  /** A launched agent the host has not yet confirmed: not in the row, but still ours to kill. */
  private unconfirmed: ProcessFields | null = null;
  private disarm: () => void = () => undefined;
  private closed = false;

  constructor(
    private readonly env: BuilderEnvironment,
    private readonly record: BuilderRecord,
    private readonly log: Logger,
    /** The builder these steps belong to, as the tree knows it. */
    private readonly owner: BuilderRuntime,
    /** Runs a step in the builder's queue (for events that arrive from outside it). */
    private readonly enqueue: <T>(step: () => Promise<T>) => Promise<T>,
  ) {
    this.link = new AgentLink(record.id, record.name, log);
  }

  /** A move of the chart, durable; then logged, told, and the deadline re-armed. */
  async transition(event: BuilderEvent, artifacts: RowArtifacts = {}): Promise<void> {
    const { from, to, changed } = await this.record.transition(event, artifacts);
    if (changed) {
      this.log.info({ from: lifeLabel(from), to: lifeLabel(to), event: event.type }, "transition");
      this.env.emit({ type: "transition", name: this.record.name, id: this.record.id, from: lifeLabel(from), to: lifeLabel(to), event: event.type, at: event.at });
      if (from.state !== to.state) this.env.lifeChanged(this.owner, from.state, event);
    }
    this.rearm();
  }

  /**
   * booting.starting → working: launches a pty host (or adopts one already
   * serving this builder: one agent per worktree, always) and waits until it
   * confirmed the agent runs. A failure is thrown after the start was
   * recorded as failed, unless `firstStart` (then the spawn rolls back).
   */
  async start(options: { firstStart: boolean }): Promise<void> {
    const adopted = await this.link.adoptable(this.record.row.ptySocket, { runningOnly: true });
    if (adopted) return this.markStarted(adopted, "adopted");
    const { spec } = this.record.row;
    const profile = this.env.profileOf(spec);
    const resume = this.record.context.restarts > 0;
    const socketPath = this.env.layout.ptySocketPath(this.record.id);
    rmSync(this.env.layout.exitStatusPath(this.record.id), { force: true });
    if (this.record.row.ptySocket !== socketPath) await this.record.persist({ ptySocket: socketPath }, this.env.now());
    let client: PtyHostClient;
    let ptyError: string | null;
    try {
      const started = await launchPtyHost(
        {
          builderId: this.record.id,
          name: this.record.name,
          cmd: agentArgv(profile, spec.cmd, spec.task, resume),
          cwd: this.record.row.worktree ?? this.env.layout.root,
          env: agentEnvironment(this.env, { ...stringEnv(process.env), ...profile.env, ...spec.env, ...(spec.task !== undefined ? { TROUPE_TASK: spec.task } : {}), ...this.env.agentEnv(this.record.row) }),
          pty: spec.pty ?? "auto",
          socketPath,
          transcriptPath: this.env.layout.transcriptPath(this.record.name, this.record.id),
          exitStatusPath: this.env.layout.exitStatusPath(this.record.id),
          logPath: this.env.layout.hostLogPath(this.record.name),
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

  async markStarted(client: PtyHostClient, how: "launched" | "adopted", spec?: BuilderSpec): Promise<void> {
    const identity = client.identity;
    // What the agent printed before this connection was up is in the host's
    // scrollback: subscribers of a start they caused get it too.
    this.attachHost(client, { replay: how === "launched" });
    await this.transition(startedEvent(identity, this.env.now()), { intent: null, ...(spec ? { spec } : {}) });
    this.unconfirmed = null;
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid, pty: identity.pty, how }, "agent running");
    this.env.terminalUp(this.owner);
    if (identity.exit) void this.enqueue(() => this.handleExit(identity.exit!, client));
  }

  /** For reconcile: an adopted host of a builder that is already working (no move). */
  async resumeWorking(client: PtyHostClient): Promise<void> {
    this.attachHost(client);
    const identity = client.identity;
    this.log.info({ pid: identity.pid, hostPid: identity.hostPid }, "adopted live pty host");
    if (identity.exit) return this.handleExit(identity.exit, client);
    this.rearm();
    this.env.terminalUp(this.owner);
  }

  attachHost(client: PtyHostClient, options: { replay?: boolean } = {}): void {
    this.link.attach(client, this.env.now(), (event, from) => this.onHost(event, from));
    if (options.replay && client.scrollback) this.env.emit({ type: "output", name: this.record.name, id: this.record.id, data: client.scrollback });
  }

  onHost(event: HostEvent, client: PtyHostClient): void {
    const failed = (what: string) => (error: unknown) => this.log.error({ err: error }, what);
    switch (event.type) {
      case "output":
        this.link.lastOutputAt = this.env.now();
        this.env.emit({ type: "output", name: this.record.name, id: this.record.id, data: event.data });
        if (this.record.life.substate === "stalled") void this.enqueue(() => this.noteActivity()).catch(failed("activity"));
        return;
      case "exit":
        void this.enqueue(() => this.handleExit(event.status, client)).catch(failed("exit handling failed"));
        return;
      case "lost":
        // The host vanished without reporting an exit: the agent is lost.
        void this
          .enqueue(async () => {
            if (client !== this.link.current) return;
            this.link.detach();
            if (this.record.life.state === "working") await this.resolveLostAgent();
          })
          .catch(failed("host loss handling failed"));
        return;
    }
  }

  async handleExit(status: ExitStatus, client: PtyHostClient): Promise<void> {
    if (client !== this.link.current) return; // an exit we caused (stop, destroy) is handled by its caller
    if (this.record.life.state !== "working") return;
    this.link.release();
    // Collected before closing: a host whose exit status nobody collects lingers until its collect timeout.
    await client.collect().catch(() => undefined);
    client.close();
    await this.exitTransition(status);
  }

  /** The agent is gone and nobody saw it exit: its exit status file, if any, says how. */
  async resolveLostAgent(): Promise<void> {
    await this.killLeftovers();
    const status = readExitStatus(this.env.layout.exitStatusPath(this.record.id)) ?? { code: null, signal: "LOST" };
    this.log.warn({ status }, "agent gone");
    await this.exitTransition(status);
  }

  async exitTransition(status: Pick<ExitStatus, "code" | "signal">): Promise<void> {
    await this.transition({ type: "EXITED", at: this.env.now(), code: status.code, signal: status.signal, jitter: this.env.random() }, { intent: null });
    this.log.info({ code: status.code, signal: status.signal, next: this.record.life }, "agent exited");
    if (this.record.life.state === "completed" && status.code === 0 && !this.record.context.doneReported) {
      await this.env.notice(this.owner, "contract_violation", "exited 0 without sending worker_done");
    }
    await this.noticeIfZombie();
  }

  async noticeIfZombie(): Promise<void> {
    if (this.record.life.state !== "zombie") return;
    const context = this.record.context;
    const about: NoticeDetail = {
      detail: deathInWords(context),
      exit: context.lastExit ? { code: context.lastExit.code, signal: context.lastExit.signal } : null,
      outputTail: lastLines(textTranscriptPath(this.env.layout.transcriptPath(this.record.name, this.record.id)), OUTPUT_TAIL_LINES),
    };
    await this.env.notice(this.owner, "worker_died", context.reason ?? "unknown", about);
  }

  /** Output seen: refresh the stall deadlines (and leave `working.stalled`). */
  async noteActivity(): Promise<void> {
    if (this.record.life.state !== "working") return;
    await this.transition({ type: "OUTPUT", at: Math.max(this.link.lastOutputAt, this.record.context.lastActivityAt ?? 0) });
  }

  // ---- deadlines -------------------------------------------------------------------

  rearm(): void {
    this.disarm();
    this.disarm = this.closed ? () => undefined : armDeadline(this.record.snapshot, this.env.now(), () => {
      void this.enqueue(() => this.onDeadline()).catch((error) => this.log.error({ err: error }, "deadline handling failed"));
    });
  }

  async onDeadline(): Promise<void> {
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

  async terminateAgent(): Promise<void> {
    await this.link.terminate(this.processes(), this.record.row.ptySocket, this.env.timings.killTimeoutMs);
    await this.killUnconfirmed();
  }

  async killLeftovers(): Promise<void> {
    await killLeftovers(this.processes(), this.record.row.ptySocket, this.env.timings.killTimeoutMs);
    await this.killUnconfirmed();
  }

  async killUnconfirmed(): Promise<void> {
    if (this.unconfirmed) await killLeftovers(this.unconfirmed, null, this.env.timings.killTimeoutMs);
    this.unconfirmed = null;
  }

  processes(): ProcessFields {
    return processFields(this.record.context.process);
  }

  /**
   * DESIGN §3/§7: destroying.stopping → destroying.removingWorktree →
   * destroyed. Each step is persisted, so a crash mid-way resumes here on the
   * next start, and `destroyed` is entered only once process, host and
   * worktree are gone.
   */
  async teardown(options: { rollback: boolean }): Promise<void> {
    const op = options.rollback ? "rollback" : "destroy";
    if (this.record.life.state !== "destroying") {
      await this.transition({ type: "DESTROY", at: this.env.now() }, { intent: { op, step: "stopping", at: this.env.now() } });
      fault("destroy.after-destroying");
    }
    if (this.record.life.substate === "stopping") {
      await this.terminateAgent();
      fault("destroy.after-kill");
      await this.transition({ type: "PROCESS_GONE", at: this.env.now() }, { intent: { op, step: "removing-worktree", at: this.env.now() } });
      fault("destroy.after-process-gone");
    }
    const repo = this.env.layout.root;
    if (this.record.row.worktree) await removeWorktree({ repo, path: this.record.row.worktree, force: true });
    fault("destroy.after-worktree");
    if (this.record.row.branch && (await branchIsOurs(this.record.row, repo, options))) await deleteBranch(repo, this.record.row.branch);
    fault("destroy.after-branch");
    await this.transition({ type: "WORKTREE_REMOVED", at: this.env.now() }, { intent: null, ptySocket: null });
  }

  /** No timer nor connection of these steps survives this. */
  shutdown(): void {
    this.closed = true;
    this.disarm();
    this.link.detach();
  }
}

function startedEvent(identity: HostIdentity, at: number): BuilderEvent {
  return { type: "STARTED", at, pid: identity.pid, pty: identity.pty, pidStartTime: identity.pidStartTime, hostPid: identity.hostPid, hostStartTime: identity.hostStartTime };
}

/** The agent's environment: `troupe` comes first on its PATH (the spawning shell's PATH, else the supervisor's). */
function agentEnvironment(env: BuilderEnvironment, vars: Record<string, string>): Record<string, string> {
  const bin = env.layout.agentBinDir;
  const rest = (vars.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").filter((dir) => dir !== "" && dir !== bin);
  return { ...vars, PATH: [bin, ...rest].join(":") };
}
