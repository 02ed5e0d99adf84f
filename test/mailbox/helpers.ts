import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../../src/storage/index.js";
import type { LifeState, Store } from "../../src/storage/types.js";
import type { ActorInfo, Directory, TerminalPort } from "../../src/mailbox/index.js";

// ---- store -------------------------------------------------------------------

export interface TestStore {
  store: Store;
  dir: string;
  /** Closes the store and opens the same directory again (a restart). */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** A real store (sql.js + journal) in a fresh temp directory. */
export async function openTestStore(): Promise<TestStore> {
  const root = mkdtempSync(join(tmpdir(), "troupe-mail-"));
  const dir = join(root, "state");
  const ts: TestStore = {
    store: await openStore({ dir }),
    dir,
    async reopen() {
      await ts.store.close();
      ts.store = await openStore({ dir });
      return ts.store;
    },
    async cleanup() {
      await ts.store.close().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
  return ts;
}

// ---- directory ---------------------------------------------------------------

/** A plain-object Directory: incarnations in spawn order. */
export class FakeDirectory implements Directory {
  readonly actors: ActorInfo[] = [];
  private seq = 0;

  add(name: string, options: Partial<Omit<ActorInfo, "name">> & { parent?: string } = {}): ActorInfo {
    const parentId = options.parent !== undefined ? this.byName(options.parent)!.id : (options.parentId ?? null);
    const info: ActorInfo = {
      id: options.id ?? `id-${name}-${++this.seq}`,
      name,
      role: options.role ?? null,
      parentId,
      state: options.state ?? "working",
      deliver: options.deliver ?? "pty",
    };
    this.actors.push(info);
    return info;
  }

  setState(name: string, state: LifeState): void {
    this.byName(name)!.state = state;
  }

  byName(name: string): ActorInfo | undefined {
    return [...this.actors].reverse().find((a) => a.name === name);
  }

  byId(id: string): ActorInfo | undefined {
    return this.actors.find((a) => a.id === id);
  }

  live(): ActorInfo[] {
    return this.actors.filter((a) => a.state !== "destroying" && a.state !== "destroyed");
  }
}

// ---- terminal ----------------------------------------------------------------

export class FakeTerminal implements TerminalPort {
  readonly writes: Array<{ actorId: string; data: string }> = [];
  readonly output = new Map<string, number | null>();
  /** Called before a write is recorded; throw to simulate a failure or a crash. */
  beforeWrite: ((actorId: string, data: string) => void) | null = null;

  lastOutputAt(actorId: string): number | null {
    return this.output.get(actorId) ?? null;
  }

  async write(actorId: string, data: string): Promise<void> {
    this.beforeWrite?.(actorId, data);
    this.writes.push({ actorId, data });
  }

  writesTo(actorId: string): string[] {
    return this.writes.filter((w) => w.actorId === actorId).map((w) => w.data);
  }
}

/** A clock the test moves by hand. */
export class FakeClock {
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}


/** Lets pending promise callbacks and immediates run (no wall-clock wait). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

export { waitFor } from "../helpers/workspace.js";
