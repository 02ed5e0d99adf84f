/**
 * The durable half of a builder: its statechart and the row that mirrors it.
 * The chart decides which moves are legal; every accepted move is written
 * (row + history) before anyone hears of it, status included.
 */
import { createActor, type Actor } from "xstate";
import type { Logger } from "pino";
import { builderMachine, lifeStateOf, type BuilderContext, type BuilderEvent } from "../../machines/builder.js";
import { TroupeError } from "../../shared/errors.js";
import type { RestartType } from "../../shared/vocabulary.js";
import type { ActorRow, LifeState, Store } from "../../storage/types.js";
import { lifeLabel, projectRow, withProcessFromRow, type RowArtifacts } from "./projection.js";

type BuilderActor = Actor<typeof builderMachine>;

export interface Life {
  state: LifeState;
  substate: string | null;
}

export interface Moved {
  from: Life;
  to: Life;
  /** The state changed (a move within a state, such as OUTPUT in working.active, does not). */
  changed: boolean;
}

export class BuilderRecord {
  readonly id: string;
  readonly name: string;
  private readonly actor: BuilderActor;

  private constructor(
    private readonly store: Store,
    private row_: ActorRow,
    actor: BuilderActor,
    log: Logger,
  ) {
    this.id = row_.id;
    this.name = row_.name;
    this.actor = actor;
    // An error inside the actor must never become an uncaughtException (DESIGN §3).
    this.actor.subscribe({ error: (error) => log.error({ err: error }, "builder actor error") });
    this.actor.start();
  }

  /** A new builder's record; `row` gets the chart's projection and is not yet stored. */
  static create(store: Store, row: ActorRow, input: { restartType: RestartType; initial?: "provisioning" | "starting" }, log: Logger): BuilderRecord {
    const actor = createActor(builderMachine, {
      input: { id: row.id, name: row.name, restartType: input.restartType, policy: row.spec.policy, at: row.createdAt, ...(input.initial ? { initial: input.initial } : {}) },
    });
    const record = new BuilderRecord(store, row, actor, log);
    record.row_ = { ...row, ...record.projection() };
    return record;
  }

  /** A record restored from its persisted snapshot. */
  static restore(store: Store, row: ActorRow, log: Logger): BuilderRecord {
    const actor = createActor(builderMachine, {
      snapshot: withProcessFromRow(row) as ReturnType<BuilderActor["getPersistedSnapshot"]>,
      input: { id: row.id, name: row.name, restartType: row.spec.restart ?? "transient", policy: row.spec.policy ?? {}, at: row.createdAt },
    });
    return new BuilderRecord(store, row, actor, log);
  }

  /** The row as last made durable. */
  get row(): ActorRow {
    return this.row_;
  }

  get life(): Life {
    return lifeStateOf(this.actor.getSnapshot());
  }

  get context(): BuilderContext {
    return this.actor.getSnapshot().context;
  }

  get snapshot() {
    return this.actor.getSnapshot();
  }

  /** Inserts the row with its first history entry (`event` from "(none)"). */
  async insert(event: string, at: number): Promise<void> {
    const row = this.row_;
    await this.store.write((tx) => {
      tx.insertActor(row);
      tx.appendHistory({ actorId: row.id, name: row.name, from: "(none)", to: lifeLabel(this.life), event, at });
    });
  }

  /** Records what is not a move of the chart: the write-ahead intent, artifacts, the spec. */
  async persist(patch: RowArtifacts, at: number): Promise<void> {
    await this.store.write((tx) => tx.updateActor(this.id, { ...patch, updatedAt: at }));
    this.row_ = { ...this.row_, ...patch, updatedAt: at };
  }

  /**
   * Sends `event` to the chart. One it does not accept in the current state
   * is refused (ILLEGAL_TRANSITION) and changes nothing; an accepted one is
   * durable, with the row's projection and `artifacts`, when this resolves.
   */
  async transition(event: BuilderEvent, artifacts: RowArtifacts = {}): Promise<Moved> {
    const before = this.actor.getSnapshot();
    const from = lifeStateOf(before);
    if (!before.can(event)) {
      throw new TroupeError("ILLEGAL_TRANSITION", `Builder "${this.name}" is ${lifeLabel(from)}; ${event.type} is not allowed there.`, { name: this.name, state: from.state, event: event.type });
    }
    this.actor.send(event);
    const to = this.life;
    const changed = from.state !== to.state || from.substate !== to.substate;
    const update: Partial<ActorRow> = { ...artifacts, ...this.projection(), updatedAt: event.at, ...(to.state === "destroyed" ? { destroyedAt: event.at } : {}) };
    await this.store.write((tx) => {
      tx.updateActor(this.id, update);
      if (changed) tx.appendHistory({ actorId: this.id, name: this.name, from: lifeLabel(from), to: lifeLabel(to), event: event.type, at: event.at });
    });
    this.row_ = { ...this.row_, ...update };
    return { from, to, changed };
  }

  /** Stops the chart's actor (nothing is written). */
  stop(): void {
    this.actor.stop();
  }

  private projection() {
    return projectRow(this.actor.getSnapshot(), this.actor.getPersistedSnapshot());
  }
}
