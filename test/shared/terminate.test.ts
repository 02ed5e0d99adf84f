import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { isProcessAlive, processStartTime, processTree } from "../../src/shared/proc.js";
import { terminateTree, waitForExit } from "../../src/shared/terminate.js";

const started: number[] = [];

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone
    }
  }
});

/** A detached shell (its own session and group, as agents and hosts run) with `script`. */
function shell(script: string): { child: ChildProcess; exited: Promise<unknown> } {
  const child = spawn("sh", ["-c", script], { detached: true, stdio: ["ignore", "pipe", "ignore"] });
  started.push(child.pid!);
  return { child, exited: once(child, "exit") };
}

/** Resolves once the tree of `pid` has at least `count` members (the shell has forked what it should). */
async function treeOfAtLeast(pid: number, count: number): Promise<number[]> {
  for (;;) {
    const tree = processTree(pid).map((ref) => ref.pid);
    if (tree.length >= count) return tree;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const firstLine = (child: ChildProcess) =>
  new Promise<string>((resolve) => {
    let text = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("\n")) resolve(text.split("\n")[0]!);
    });
  });

describe("terminateTree", () => {
  it("ends a real tree with SIGTERM, including a child that left for a session of its own", async () => {
    const { child, exited } = shell("sleep 1000 & setsid sleep 1000 & wait");
    const tree = await treeOfAtLeast(child.pid!, 3);
    const began = Date.now();
    const outcome = await terminateTree(child.pid!, { startTime: processStartTime(child.pid!), graceMs: 30_000, exited });
    expect(outcome).toBe("exited");
    // the exit event ended the wait: nowhere near the 30 s grace
    expect(Date.now() - began).toBeLessThan(10_000);
    for (const pid of tree) expect(isProcessAlive(pid)).toBe(false);
  });

  it("sends SIGKILL after the grace period to a tree that ignores SIGTERM", async () => {
    const { child, exited } = shell("trap '' TERM; sleep 1000 & sleep 1000 & wait");
    const tree = await treeOfAtLeast(child.pid!, 3);
    const outcome = await terminateTree(child.pid!, { graceMs: 200, exited });
    expect(outcome).toBe("killed");
    for (const pid of tree) expect(isProcessAlive(pid)).toBe(false);
  });

  it("ends a process that is not its child, watching it without an event", async () => {
    // The shell prints its background sleep's pid and exits: the sleep is re-parented, not ours.
    const { child } = shell("sleep 1000 & echo $!");
    const pid = Number(await firstLine(child));
    expect(isProcessAlive(pid)).toBe(true);
    started.push(pid);
    expect(await terminateTree(pid, { startTime: processStartTime(pid), graceMs: 5_000 })).toBe("exited");
    expect(isProcessAlive(pid)).toBe(false);
  });

  it("leaves alone a pid whose start time is not the one recorded (a reused pid)", async () => {
    const { child } = shell("sleep 1000");
    await treeOfAtLeast(child.pid!, 1);
    const start = processStartTime(child.pid!)!;
    expect(await terminateTree(child.pid!, { startTime: start + 1, graceMs: 100 })).toBe("gone");
    expect(isProcessAlive(child.pid!)).toBe(true);
  });

  it("freezes a process before reading its tree, then kills it all", async () => {
    const { child, exited } = shell("sleep 1000 & sleep 1000 & wait");
    const tree = await treeOfAtLeast(child.pid!, 3);
    expect(await terminateTree(child.pid!, { graceMs: 0, freeze: true, exited })).toBe("killed");
    for (const pid of tree) expect(isProcessAlive(pid)).toBe(false);
  });
});

describe("waitForExit", () => {
  it("ends its wait when the exited event fires, and reports a live process after the time is up", async () => {
    const { child, exited } = shell("sleep 1000");
    await treeOfAtLeast(child.pid!, 1);
    const ref = { pid: child.pid!, start: processStartTime(child.pid!) };
    expect(await waitForExit(ref, 50, exited)).toBe(false);
    setTimeout(() => process.kill(child.pid!, "SIGKILL"), 50);
    const began = Date.now();
    expect(await waitForExit(ref, 30_000, exited)).toBe(true);
    expect(Date.now() - began).toBeLessThan(10_000);
  });
});
