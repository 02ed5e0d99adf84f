import { describe, expect, it } from "vitest";
import { KeyedSerialQueue, SerialQueue } from "../../src/shared/serial-queue.js";

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe("SerialQueue", () => {
  it("runs one operation at a time, in order, whatever the outcome of the earlier ones", async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const op = (name: string, fail = false) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running--;
      if (fail) throw new Error(name);
      return name;
    };
    const a = queue.run(op("a"));
    const b = queue.run(op("b", true));
    const c = queue.run(() => {
      log.push("sync c");
      return "c";
    });
    expect(queue.idle).toBe(false);
    await expect(a).resolves.toBe("a");
    await expect(b).rejects.toThrow("b");
    await expect(c).resolves.toBe("c");
    expect(log).toEqual(["start a", "end a", "start b", "end b", "sync c"]);
    expect(queue.idle).toBe(true);
  });

  it("turns a synchronous throw into a rejection and goes on", async () => {
    const queue = new SerialQueue();
    await expect(
      queue.run(() => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(queue.run(() => 1)).resolves.toBe(1);
  });
});

describe("KeyedSerialQueue", () => {
  it("serialises per key, lets other keys run at once, and forgets idle keys", async () => {
    const queues = new KeyedSerialQueue<string>();
    const log: string[] = [];
    const op = (name: string) => async () => {
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
    };
    const all = [queues.run("r1", op("r1-a")), queues.run("r2", op("r2-a")), queues.run("r1", op("r1-b"))];
    expect(queues.size).toBe(2);
    await Promise.all(all);
    expect(log.indexOf("start r2-a")).toBeLessThan(log.indexOf("end r1-a"));
    expect(log.indexOf("start r1-b")).toBeGreaterThan(log.indexOf("end r1-a"));
    await tick();
    expect(queues.size).toBe(0);
  });
});
