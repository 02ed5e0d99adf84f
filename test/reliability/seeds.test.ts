import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/storage/index.js";
import { workspaceLayout } from "../../src/supervisor/layout.js";
import { agentProcesses } from "../../src/supervisor/world.js";
import { isProcessAlive } from "../../src/shared/proc.js";
import { hostProcesses, invariantViolations } from "../helpers/invariants.js";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { runWithFault } from "../helpers/faults.js";
import { git } from "../helpers/workspace.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

/** The failures of ../shared/prior-art, as named tests. */
describe("seed scenarios", () => {
  it("(1) half-spawn: the registration write fails after the terminal exists → no invisible builder", async () => {
    h = await Harness.start(FAST);
    await h.supervisor.close();
    const run = await runWithFault(h.repo, "spawn", "spawn.after-host=throw");
    expect(run.out).toContain("Fault injected at spawn.after-host");
    expect(run.out).toContain("rolled back");
    expect(run.out).toContain("DONE");
    await h.open(FAST);
    expect(await h.supervisor.status()).toEqual([]);
    expect(agentProcesses(h.repo)).toEqual([]);
    expect(hostProcesses(h.repo)).toEqual([]);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
    expect((await h.supervisor.doctor()).findings).toEqual([]);
  });

  it("(2) split state: a builder's row is lost while its host runs → doctor finds it, fix tears it down", async () => {
    h = await Harness.start(FAST);
    const st = await h.supervisor.spawn({ name: "b", cmd: agent("--hang") });
    await h.supervisor.close();
    await loseRow(h.repo, st.id);
    await h.open(FAST);
    expect(await h.supervisor.status()).toEqual([]);
    const { findings } = await h.supervisor.doctor();
    expect(findings.map((f) => f.kind).sort()).toEqual(["orphan-branch", "orphan-host", "orphan-worktree"]);
    expect(findings.find((f) => f.kind === "orphan-host")).toMatchObject({ name: "b", id: st.id });
    expect(isProcessAlive(st.pid!)).toBe(true);
    const report = await h.supervisor.doctor({ fix: true });
    expect(report.findings).toEqual([]);
    expect(report.fixed).toHaveLength(3);
    expect(isProcessAlive(st.pid!)).toBe(false);
    expect(await invariantViolations(h.repo, h.supervisor)).toEqual([]);
  });

  it("(2') split state: … or adopt registers the live orphan, with the same pid, and mail reaches it", async () => {
    h = await Harness.start(FAST);
    const st = await h.supervisor.spawn({ name: "b", cmd: agent("--hang") });
    await h.supervisor.close();
    await loseRow(h.repo, st.id);
    await h.open(FAST);
    const { adopted, skipped } = await h.supervisor.adopt();
    expect(skipped).toEqual([]);
    expect(adopted).toEqual([expect.objectContaining({ name: "b", id: st.id, state: "working", pid: st.pid, worktree: st.worktree, branch: "troupe/b" })]);
    expect((await h.supervisor.doctor()).findings).toEqual([]);
    const [message] = await h.supervisor.send({ to: "b", body: "you are back" });
    expect(message).toMatchObject({ to: "b", toId: st.id });
    expect(await invariantViolations(h.repo, h.supervisor)).toEqual([]);
  });

  it("(3) resurrection: status, restart and mail on a destroyed builder never bring it back; destroy twice succeeds", async () => {
    h = await Harness.start(FAST);
    const st = await h.supervisor.spawn({ name: "b", cmd: agent("--hang") });
    await h.supervisor.destroy("b");
    for (let i = 0; i < 5; i++) {
      await h.supervisor.status({ all: true });
      await h.supervisor.get("b");
      await expect(h.supervisor.restart("b")).rejects.toMatchObject({ code: "DESTROYED" });
      await expect(h.supervisor.send({ to: "b", body: "hello?" })).rejects.toMatchObject({ code: "DESTROYED" });
    }
    expect((await h.supervisor.destroy("b")).state).toBe("destroyed");
    await h.supervisor.close();
    await h.open(FAST);
    expect(await h.supervisor.get("b")).toMatchObject({ state: "destroyed", id: st.id });
    expect(agentProcesses(h.repo)).toEqual([]);
    expect(git(h.repo, "worktree", "list", "--porcelain")).not.toContain("troupe/b");
  });

  it("(4) resume race: a restart interrupted after its agent started adopts that agent instead of starting a second one", async () => {
    h = await Harness.start(FAST);
    await h.supervisor.spawn({ name: "b", cmd: agent("--hang") });
    await h.supervisor.stop("b");
    await h.supervisor.close();
    const run = await runWithFault(h.repo, "restart", "restart.after-host=crash");
    expect(run.signal).toBe("SIGKILL");
    const orphaned = agentProcesses(h.repo);
    expect(orphaned).toHaveLength(1); // the agent the crashed restart started
    await h.open(FAST);
    const st = await h.supervisor.get("b");
    expect(st).toMatchObject({ state: "working", pid: orphaned[0]!.pid });
    expect(agentProcesses(h.repo)).toHaveLength(1);
    expect(await invariantViolations(h.repo, h.supervisor)).toEqual([]);
  });
});

/** Loses a builder's registration the way split state does: the row is gone, everything else runs on. */
async function loseRow(repo: string, id: string): Promise<void> {
  const store = await openStore({ dir: workspaceLayout(repo).stateDir });
  await store.write((tx) => tx.deleteActor(id));
  await store.close();
}
