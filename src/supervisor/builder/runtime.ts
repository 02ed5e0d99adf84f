/**
 * One builder's whole life (DESIGN §3, §7): spawn, start, stop, restart,
 * done, destroy, reconcile and restart-for-sibling are operations of this
 * class, each run in the builder's own queue, so a builder does one thing at
 * a time. The chart (through `BuilderRecord`) says which moves are legal and
 * is written before anyone hears of a move; the host connection and the
 * deadline timer report back here by events.
 */
import type { Logger } from "pino";
import { addWorktree } from "../../actors/index.js";
import type { BuilderScreen, BuilderSpec, BuilderStatus } from "../../shared/contract.js";
import { TroupeError, isTroupeError } from "../../shared/errors.js";
import { fault } from "../../shared/faults.js";
import { SerialQueue } from "../../shared/serial-queue.js";
import type { ActorRow } from "../../storage/types.js";
import type { ProcessFields } from "./agent-link.js";
import type { BuilderEnvironment } from "./environment.js";
import { lifeLabel, statusOf } from "./projection.js";
import { BuilderRecord, type Life } from "./record.js";
import { BuilderSteps } from "./steps.js";
import { assertNothingToLose } from "./worktree-fate.js";
import { actorLogger } from "../log.js";

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
  private readonly queue = new SerialQueue();
  private readonly steps: BuilderSteps;

  private constructor(
    private readonly env: BuilderEnvironment,
    private readonly record: BuilderRecord,
    log: Logger,
  ) {
    this.id = record.id;
    this.name = record.name;
    this.log = log;
    this.steps = new BuilderSteps(env, record, log, this, (step) => this.queue.run(step));
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
    return statusOf(this.row, this.record.context, this.steps.link.lastOutputAt);
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
        await this.steps.transition({ type: "PROVISIONED", at: this.env.now(), worktree: path!, branch: branch! }, { worktree: path, branch, spec: { ...this.row.spec, branchExisted: made.branchExisted } });
        fault("spawn.after-provisioned");
        await this.steps.start({ firstStart: true });
      });
    } catch (error) {
      this.log.warn({ err: error }, "spawn failed: rolling back");
      await this.queue.run(() => this.steps.teardown({ rollback: true })).catch((rollbackError) => this.log.error({ err: rollbackError }, "spawn rollback failed"));
      this.shutdown();
      const message = `Spawn of "${this.name}" failed and was rolled back (nothing left behind): `;
      if (isTroupeError(error)) throw new TroupeError(error.code, message + error.message, { ...error.details, name: this.name }, { cause: error });
      throw new TroupeError("SPAWN_FAILED", message + (error as Error).message, { name: this.name }, { cause: error });
    }
  }

  /** Writes the row of an orphan (`forOrphan`) and adopts its live host. */
  async adopt(): Promise<void> {
    await this.record.insert("ADOPT", this.env.now());
    await this.queue.run(() => this.steps.start({ firstStart: false }));
  }

  /** Stops the agent gracefully: working → completed; a pending restart is cancelled. Idempotent. */
  stop(): Promise<void> {
    return this.queue.run(async () => {
      const { state, substate } = this.life;
      if (state === "working") {
        // Write-ahead: a stop interrupted by a crash is finished as a stop on the next start.
        await this.record.persist({ intent: { op: "stop", step: "killing", at: this.env.now() } }, this.env.now());
        await this.steps.terminateAgent();
        fault("stop.after-kill");
        await this.steps.transition({ type: "STOPPED", at: this.env.now() }, { intent: null });
      } else if (state === "booting" && substate === "backoff") {
        await this.steps.transition({ type: "STOPPED", at: this.env.now() });
      } else if (state === "booting") {
        throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is starting (${substate}); stop it once it is working, or destroy it.`, { name: this.name });
      }
    });
  }

  /** Starts a completed or zombie builder again in its worktree (a working one is stopped first). */
  restart(): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state === "working") {
        await this.steps.terminateAgent();
        await this.steps.transition({ type: "STOPPED", at: this.env.now() });
      }
      if (this.life.state === "booting") throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is already starting (${this.life.substate}).`, { name: this.name });
      await this.steps.transition({ type: "RESTART", at: this.env.now() });
      fault("restart.after-transition");
      await this.steps.start({ firstStart: false });
    });
  }

  /** `worker_done` from the agent: it is stopped gracefully and the builder is completed. */
  done(): Promise<void> {
    return this.queue.run(async () => {
      if (this.life.state !== "working") return;
      await this.steps.terminateAgent();
      await this.steps.transition({ type: "DONE", at: this.env.now() });
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
      await this.steps.teardown({ rollback: false });
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
            await this.steps.terminateAgent();
            return this.steps.transition({ type: "STOPPED", at: this.env.now() }, { intent: null });
          }
          const host = await this.steps.link.adoptable(this.row.ptySocket);
          if (host) {
            decide("adopt live pty host", { hostPid: host.identity.hostPid, pid: host.identity.pid });
            return this.steps.resumeWorking(host);
          }
          decide("host gone: treat as an exit");
          return this.steps.resolveLostAgent();
        }
        case "booting":
          if (substate === "backoff") {
            decide("re-arm restart deadline");
            return this.steps.rearm();
          }
          if (substate === "starting") {
            decide("finish the interrupted start");
            return this.steps.start({ firstStart: false }).catch(() => undefined);
          }
          // provisioning: the spawn's caller is gone; roll it back so nothing half-made stays.
          decide("roll back interrupted spawn");
          return this.steps.teardown({ rollback: true });
        case "completed":
        case "zombie": {
          const host = await this.steps.link.adoptable(this.row.ptySocket);
          if (host) {
            host.close();
            decide("stop the agent of a finished builder", { hostPid: host.identity.hostPid });
            await this.steps.terminateAgent();
          } else {
            await this.steps.killLeftovers();
          }
          return;
        }
        case "destroying":
          decide("resume teardown");
          return this.steps.teardown({ rollback: this.row.intent?.op === "rollback" });
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
      await this.steps.terminateAgent();
      const at = this.env.now();
      if (this.row.spec.restart === "temporary") return this.steps.transition({ type: "STOPPED", at });
      await this.steps.transition({ type: "SIBLING_RESTART", at, cause });
      await this.steps.start({ firstStart: false });
    });
  }

  /** `doctor --fix`: the agent of a finished builder still runs; end it. */
  endStrayAgent(): Promise<void> {
    return this.queue.run(async () => void (await this.steps.terminateAgent()));
  }

  /** `doctor --fix`: the row says working but host and agent are gone; treat it as an exit. */
  resolveLost(): Promise<void> {
    return this.queue.run(() => this.steps.resolveLostAgent());
  }

  /** Resolves once every operation queued so far has settled. */
  drain(): Promise<void> {
    return this.queue.run(async () => undefined);
  }

  /** Stops timers and connections of this runtime; agents keep running for the next supervisor. */
  shutdown(): void {
    this.steps.shutdown();
    this.record.stop();
  }

  /** What the agent's terminal shows now, from the screen its pty host keeps. */
  async screen(): Promise<BuilderScreen> {
    const host = this.steps.link.current;
    if (!host || this.life.state !== "working") {
      throw new TroupeError("HOST_UNREACHABLE", `Builder "${this.name}" is ${lifeLabel(this.life)}: no agent runs in its terminal; \`troupe logs ${this.name}\` shows what it printed.`, { name: this.name, state: this.life.state });
    }
    if (this.row.pty === false) throw new TroupeError("PTY_UNAVAILABLE", `Builder "${this.name}" runs without a terminal (pipes); \`troupe logs ${this.name}\` shows what it printed.`, { name: this.name });
    const text = await host.screenText();
    return { name: this.name, id: this.id, ...text };
  }

  // ---- mail ---------------------------------------------------------------------

  /** When the terminal last printed (its start counts), or null when no terminal is attached. */
  terminalLastOutputAt(): number | null {
    return this.steps.link.current && this.row.pty !== false ? this.steps.link.lastOutputAt : null;
  }

  /** Types into the agent's terminal (mail delivery). */
  writeTerminal(data: string): void {
    this.steps.link.write(data, this.env.now());
  }
}

function logFor(env: BuilderEnvironment, row: ActorRow): Logger {
  return actorLogger(env.logger, row);
}
