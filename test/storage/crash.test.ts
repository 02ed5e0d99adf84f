import { describe, expect, it } from "vitest";
import { open, runFixture, tempDir } from "./helpers.js";

/**
 * A real child process writes acknowledged records (each: two rows in one
 * transaction) with 8 concurrent writers and frequent snapshots, and is
 * killed with SIGKILL at a random moment. After reopening, every
 * acknowledged record is there, the records present form an unbroken prefix
 * of the order they were issued in, and none is half applied.
 */
describe("crash safety (kill -9)", () => {
  const ROUNDS = 20;

  it(`keeps every acknowledged write over ${ROUNDS} kills`, async () => {
    let dropped = 0;

    const round = async (dir: string, n: number): Promise<void> => {
      const tag = `r${n}-`;
      // Every other pair of rounds snapshots through the worker thread instead of the main thread.
      const child = runFixture("writer.ts", [dir, tag, (n >> 1) % 2 === 0 ? "Infinity" : "0"]);
      await child.waitLine((l) => l === "ready", "the writer to open the store");
      const target = Math.floor(Math.random() * 800);
      await child.waitLine((l) => /^\d+$/.test(l) && Number(l) >= target, `ack ${target}`);
      child.proc.kill("SIGKILL");
      expect((await child.exited).signal).toBe("SIGKILL");
      const acked = child.lines.filter((l) => /^\d+$/.test(l)).map(Number);

      const store = await open(dir, { snapshotOnClose: n % 3 === 0 });
      expect(store.recovery.staleLockTakenOver?.pid).toBe(child.proc.pid);
      dropped += store.recovery.droppedBytes;
      if (store.recovery.dropReason !== null) expect(store.recovery.dropReason).toBe("torn");
      for (const k of acked) expect(store.getMeta(`${tag}a${k}`), `acked record ${k} of round ${n}`).toBe(String(k));
      let present = 0;
      for (; ; present++) {
        const a = store.getMeta(`${tag}a${present}`);
        const b = store.getMeta(`${tag}b${present}`);
        expect(a === undefined, `record ${present} of round ${n} half applied`).toBe(b === undefined);
        if (a === undefined) break;
      }
      expect(present).toBeGreaterThan(Math.max(...acked));
      for (let k = present; k < present + 64; k++) expect(store.getMeta(`${tag}a${k}`), "a record past a missing one").toBeUndefined();
      await store.close();
    };

    // Two workspaces side by side halve the wall time (most of a round is a child starting up).
    const lane = async (first: number): Promise<void> => {
      const dir = tempDir();
      for (let n = first; n < ROUNDS; n += 2) await round(dir, n);
    };
    await Promise.all([lane(0), lane(1)]);
    // SIGKILL cannot tear a write(2) (only a power cut can); torn tails have their own test.
    console.log(`crash test: ${dropped} torn bytes cut over ${ROUNDS} rounds`);
  });
});
