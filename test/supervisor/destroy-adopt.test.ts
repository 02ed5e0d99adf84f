import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { git, waitFor } from "../helpers/workspace.js";
import { leftoverProcesses } from "../helpers/invariants.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("destroy", () => {
  it("removes process, host, worktree and branch, keeps a tombstone, and is idempotent", async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "gone", cmd: agent("--hang") });
    const tomb = await h.supervisor.destroy("gone");
    expect(tomb).toMatchObject({ name: "gone", state: "destroyed", pid: null });
    expect(tomb.destroyedAt).not.toBeNull();
    expect(isProcessAlive(st.pid!)).toBe(false);
    expect(existsSync(st.worktree!)).toBe(false);
    expect(git(h.repo, "worktree", "list", "--porcelain")).not.toContain(st.worktree!);
    expect(git(h.repo, "branch", "--list", "troupe/gone")).toBe("");
    expect(leftoverProcesses(h.repo)).toEqual([]);
    expect(h.transitions("gone").slice(-3)).toEqual(["destroying.stopping", "destroying.removingWorktree", "destroyed"]);
    // idempotent
    expect((await h.supervisor.destroy("gone")).state).toBe("destroyed");
    expect(await h.supervisor.status()).toEqual([]);
    expect((await h.supervisor.status({ all: true })).map((b) => b.state)).toEqual(["destroyed"]);
  });

  it("refuses a dirty worktree (or unmerged commits) without force and changes nothing; force throws them away", async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "dirty", cmd: agent("--hang") });
    writeFileSync(join(st.worktree!, "work.txt"), "unsaved\n");
    await expect(h.supervisor.destroy("dirty")).rejects.toMatchObject({ code: "WORKTREE_DIRTY", message: expect.stringContaining("force") });
    expect(await h.supervisor.get("dirty")).toMatchObject({ state: "working", pid: st.pid });
    expect(isProcessAlive(st.pid!)).toBe(true);
    git(st.worktree!, "add", ".");
    git(st.worktree!, "commit", "-q", "-m", "work");
    await expect(h.supervisor.destroy("dirty")).rejects.toMatchObject({ code: "WORKTREE_DIRTY", message: expect.stringContaining("commit") });
    expect((await h.supervisor.get("dirty")).state).toBe("working");
    expect((await h.supervisor.destroy("dirty", { force: true })).state).toBe("destroyed");
    expect(existsSync(st.worktree!)).toBe(false);
  });

  it("a destroyed name is never re-provisioned by status, stop, restart or a new supervisor", async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "tomb", cmd: agent("--hang") });
    await h.supervisor.destroy("tomb");
    for (let i = 0; i < 3; i++) await h.supervisor.status({ all: true });
    expect(await h.supervisor.get("tomb")).toMatchObject({ state: "destroyed" });
    await expect(h.supervisor.restart("tomb")).rejects.toMatchObject({ code: "DESTROYED" });
    await expect(h.supervisor.stop("tomb")).rejects.toMatchObject({ code: "DESTROYED" });
    await h.supervisor.close();
    await h.open(FAST);
    expect(await h.supervisor.get("tomb")).toMatchObject({ state: "destroyed", id: st.id });
    expect(existsSync(st.worktree!)).toBe(false);
    expect(git(h.repo, "branch", "--list", "troupe/tomb")).toBe("");
    expect(leftoverProcesses(h.repo)).toEqual([]);
    // Only an explicit spawn makes a new incarnation.
    const again = await h.supervisor.spawn({ name: "tomb", cmd: agent("--hang") });
    expect(again.id).not.toBe(st.id);
  });
});

describe("close and adopt", () => {
  it("a new supervisor adopts live builders with the same pid; a builder that died meanwhile follows its restart policy", async () => {
    h = await Harness.start();
    const live = await h.supervisor.spawn({ name: "live", cmd: agent("--echo") });
    const dies = await h.supervisor.spawn({ name: "dies", cmd: agent("--hang"), restart: "permanent" });
    const once = await h.supervisor.spawn({ name: "once", cmd: agent("--hang"), restart: "temporary" });
    await h.supervisor.close();

    // The agents outlive the supervisor; two die while nobody supervises them.
    expect(isProcessAlive(live.pid!)).toBe(true);
    signalProcessTree(dies.pid!, "SIGKILL");
    signalProcessTree(once.pid!, "SIGKILL");
    await waitFor(() => !isProcessAlive(dies.pid!) && !isProcessAlive(once.pid!), "agents dead");

    await h.open(FAST);
    expect(await h.supervisor.get("live")).toMatchObject({ state: "working", pid: live.pid });
    const restarted = await waitFor(async () => {
      const st = await h!.supervisor.get("dies");
      return st.state === "working" && st.pid !== dies.pid ? st : null;
    }, "dies restarted");
    expect(restarted.restarts).toBe(1);
    expect(await h.waitForState("once", "zombie")).toMatchObject({ reason: "crashed" });

    // The adopted host still serves input and output.
    const { connectPtyHost } = await import("../../src/actors/index.js");
    const { workspaceLayout } = await import("../../src/supervisor/layout.js");
    const client = await connectPtyHost(workspaceLayout(h.repo).ptySocketPath(live.id));
    client.write("still here\r");
    await h.waitForOutput("live", /ECHO:still here/);
    client.close();
  });
});
