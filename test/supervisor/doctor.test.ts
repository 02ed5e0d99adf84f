import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { git, waitFor } from "../helpers/workspace.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

async function kinds(): Promise<string[]> {
  return (await h!.supervisor.doctor()).findings.map((f) => f.kind).sort();
}

describe("doctor", () => {
  it("reports nothing on a clean workspace with builders in every state", async () => {
    h = await Harness.start(FAST);
    await h.supervisor.spawn({ name: "w", cmd: agent("--hang") });
    await h.supervisor.spawn({ name: "c", cmd: agent("--hang") });
    await h.supervisor.stop("c");
    await h.supervisor.spawn({ name: "d", cmd: agent("--hang") });
    await h.supervisor.destroy("d");
    expect(await h.supervisor.doctor()).toEqual({ findings: [] });
  });

  it("finds a stray worktree and branch under troupe's names, and fix removes them", async () => {
    h = await Harness.start(FAST);
    git(h.repo, "worktree", "add", "-q", "-b", "troupe/stray", join(h.repo, ".troupe", "worktrees", "stray"));
    git(h.repo, "branch", "troupe/lonely");
    // A spawn does not build over it.
    await expect(h.supervisor.spawn({ name: "stray", cmd: agent("--hang") })).rejects.toMatchObject({ code: "NAME_TAKEN", message: expect.stringContaining("doctor") });
    const { findings } = await h.supervisor.doctor();
    expect(findings.map((f) => f.kind).sort()).toEqual(["orphan-branch", "orphan-branch", "orphan-worktree"]);
    for (const f of findings) expect(f.fix.length).toBeGreaterThan(5);
    const report = await h.supervisor.doctor({ fix: true });
    expect(report.findings).toEqual([]);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
  });

  it("finds a stale socket file and an agent process with no row", async () => {
    h = await Harness.start(FAST);
    mkdirSync(join(h.repo, ".troupe", "run", "pty"), { recursive: true });
    writeFileSync(join(h.repo, ".troupe", "run", "pty", "gone.sock"), "");
    const stray = spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { env: { ...process.env, TROUPE_WORKSPACE: h.repo, TROUPE_AGENT: "ghost", TROUPE_AGENT_ID: "nope" }, stdio: "ignore" });
    try {
      await waitFor(async () => (await kinds()).length === 2, "two findings");
      expect(await kinds()).toEqual(["orphan-process", "stale-socket"]);
      expect((await h.supervisor.doctor({ fix: true })).findings).toEqual([]);
      await waitFor(() => !isProcessAlive(stray.pid!), "the stray process killed");
    } finally {
      stray.kill("SIGKILL");
    }
  });

  it("finds lock files left by a dead owner and the socket of a killed daemon", async () => {
    h = await Harness.start(FAST);
    // A process that dies: its pid names the leftovers.
    const dead = spawn(process.execPath, ["-e", "0"]);
    await new Promise((resolve) => dead.once("exit", resolve));
    writeFileSync(join(h.repo, ".troupe", "state", `.lock.${dead.pid}.x1y2`), "{}");
    writeFileSync(join(h.repo, ".troupe", "state", `lock.stale-${dead.pid}-z3`), "{}");
    // A "daemon" listening on the socket path, killed with SIGKILL: the socket file stays.
    const socket = join(h.repo, ".troupe", "run", "daemon.sock");
    const daemon = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(socket)}, () => console.log("up")); setInterval(() => {}, 1 << 30)`], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((resolve) => daemon.stdout!.once("data", resolve));
    daemon.kill("SIGKILL");
    await new Promise((resolve) => daemon.once("exit", resolve));
    expect(await kinds()).toEqual(["stale-lock", "stale-lock", "stale-socket"]);
    expect((await h.supervisor.doctor({ fix: true })).findings).toEqual([]);
    // The live lock of this supervisor is never touched.
    expect((await import("node:fs")).existsSync(join(h.repo, ".troupe", "state", "lock"))).toBe(true);
  });

  it("finds a builder whose worktree was deleted under it; fix destroys it to a tombstone", async () => {
    h = await Harness.start(FAST);
    const st = await h.supervisor.spawn({ name: "lost", cmd: agent("--hang") });
    rmSync(st.worktree!, { recursive: true, force: true });
    expect(await kinds()).toEqual(["missing-worktree"]);
    expect((await h.supervisor.doctor({ fix: true })).findings).toEqual([]);
    expect((await h.supervisor.get("lost")).state, JSON.stringify(h.events.filter((e) => e.type !== "output"))).toBe("destroyed");
    expect(isProcessAlive(st.pid!)).toBe(false);
  });

  it("finds what is left of a tombstone", async () => {
    h = await Harness.start(FAST);
    const st = await h.supervisor.spawn({ name: "t", cmd: agent("--hang") });
    await h.supervisor.destroy("t");
    git(h.repo, "branch", "troupe/t");
    const { findings } = await h.supervisor.doctor();
    expect(findings).toEqual([expect.objectContaining({ kind: "tombstone-leftover", name: "t", id: st.id })]);
    expect((await h.supervisor.doctor({ fix: true })).findings).toEqual([]);
  });

  it("gc forgets old tombstones once nothing is left of them, and keeps live builders", async () => {
    h = await Harness.start(FAST);
    await h.supervisor.spawn({ name: "keep", cmd: agent("--hang") });
    const gone = await h.supervisor.spawn({ name: "old", cmd: agent("--hang") });
    await h.supervisor.destroy("old");
    expect((await h.supervisor.gc()).removed).toEqual([]); // younger than the default age
    expect((await h.supervisor.gc({ olderThanMs: 0 })).removed).toEqual([{ name: "old", id: gone.id }]);
    expect((await h.supervisor.status({ all: true })).map((b) => b.name)).toEqual(["keep"]);
  });
});
