import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isTroupeError } from "../../src/shared/errors.js";
import { processStartTime } from "../../src/shared/proc.js";
import { open, runFixture, tempDir } from "./helpers.js";

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid!;
}

function writeLock(dir: string, owner: { pid: number; startTime: number | null; startedAt?: string }): void {
  writeFileSync(join(dir, "lock"), JSON.stringify({ startedAt: "2024-01-01T00:00:00.000Z", ...owner }));
}

describe("single owner", () => {
  it("a second process is refused while the first owns the workspace", async () => {
    const dir = tempDir();
    const store = await open(dir);
    const lock = JSON.parse(readFileSync(join(dir, "lock"), "utf8")) as { pid: number; startTime: number; startedAt: string };
    expect(lock).toMatchObject({ pid: process.pid, startTime: processStartTime(process.pid) });
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    const child = runFixture("opener.ts", [dir, "try"]);
    const line = await child.waitLine((l) => l.startsWith("{"), "the second opener's verdict");
    const verdict = JSON.parse(line) as { ok: boolean; code: string; message: string };
    expect(verdict).toMatchObject({ ok: false, code: "STORE_LOCKED" });
    expect(verdict.message).toContain(`workspace owned by pid ${process.pid} (started ${lock.startedAt})`);
    await child.exited;
    await store.close();
    expect(existsSync(join(dir, "lock"))).toBe(false);
  });

  it("this process is refused while another process owns the workspace, and gets it once released", async () => {
    const dir = tempDir();
    const holder = runFixture("opener.ts", [dir, "hold"]);
    const line = await holder.waitLine((l) => l.startsWith("opened"), "the holder to open the store");
    const holderPid = Number(line.split(" ")[1]);
    let refused: unknown;
    try {
      await open(dir);
    } catch (error) {
      refused = error;
    }
    expect(isTroupeError(refused, "STORE_LOCKED")).toBe(true);
    expect((refused as Error).message).toContain(`pid ${holderPid}`);
    holder.proc.stdin!.end();
    expect((await holder.exited).code).toBe(0);
    const store = await open(dir);
    expect(store.recovery.staleLockTakenOver).toBeNull();
  });

  it("takes over the lock of a dead process", async () => {
    const dir = tempDir();
    const pid = await deadPid();
    writeLock(dir, { pid, startTime: 12345 });
    const store = await open(dir);
    expect(store.recovery.staleLockTakenOver).toEqual({ pid, startTime: 12345 });
    expect(JSON.parse(readFileSync(join(dir, "lock"), "utf8")).pid).toBe(process.pid);
  });

  it("takes over the lock of a reused pid (alive, but another start time)", async () => {
    const dir = tempDir();
    const holder = runFixture("opener.ts", [tempDir(), "hold"]); // any live process not ours
    await holder.waitLine((l) => l.startsWith("opened"), "a live process");
    const pid = holder.proc.pid!;
    const real = processStartTime(pid)!;
    writeLock(dir, { pid, startTime: real - 1 });
    const store = await open(dir);
    expect(store.recovery.staleLockTakenOver).toEqual({ pid, startTime: real - 1 });
    // and the same live pid with its true start time is respected
    await store.close();
    writeLock(dir, { pid, startTime: real });
    let refused: unknown;
    try {
      await open(dir);
    } catch (error) {
      refused = error;
    }
    expect(isTroupeError(refused, "STORE_LOCKED")).toBe(true);
  });

  it("takes over an unreadable lock file", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "lock"), "garbage");
    const store = await open(dir);
    expect(store.recovery.staleLockTakenOver).toEqual({ pid: 0, startTime: null });
  });

  it("one of several concurrent openers in this process wins, the others are refused", async () => {
    const dir = tempDir();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => open(dir)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(isTroupeError(r.reason, "STORE_LOCKED")).toBe(true);
  });

  it("close leaves a lock that someone else took alone", async () => {
    const dir = tempDir();
    const store = await open(dir);
    const pid = await deadPid();
    writeLock(dir, { pid, startTime: 1 }); // as if another owner had taken over meanwhile
    await store.close();
    expect(JSON.parse(readFileSync(join(dir, "lock"), "utf8")).pid).toBe(pid);
  });
});
