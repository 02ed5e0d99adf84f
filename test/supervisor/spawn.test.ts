import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSupervisor, isTroupeError } from "../../src/index.js";
import { workspaceLayout } from "../../src/supervisor/layout.js";
import { isProcessAlive } from "../../src/shared/proc.js";
import { Harness, agent } from "../helpers/supervisor.js";
import { git } from "../helpers/workspace.js";
import { leftoverProcesses } from "../helpers/invariants.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("spawn", () => {
  it("starts an agent in a real TTY, in its own worktree on its own branch; output reaches subscribers and the transcript", async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "alpha", cmd: agent("--info", "--env", "TROUPE_AGENT", "--env", "TROUPE_AGENT_ID", "--env", "TROUPE_WORKSPACE", "--hang") });
    expect(st).toMatchObject({ name: "alpha", state: "working", substate: "active", pty: true, branch: "troupe/alpha", restarts: 0, parent: null });
    expect(st.worktree).toBe(join(h.repo, ".troupe", "worktrees", "alpha"));
    expect(isProcessAlive(st.pid!)).toBe(true);

    const info = JSON.parse((await h.waitForOutput("alpha", /INFO (\{.*\})/))[1]!);
    expect(info.isatty).toBe(true);
    expect(realpathSync(info.cwd)).toBe(st.worktree);
    expect(info.branch).toBe("troupe/alpha");
    expect(info.pid).toBe(st.pid);
    await h.waitForOutput("alpha", /ENV TROUPE_WORKSPACE=/);
    const out = h.output("alpha");
    expect(out).toContain("ENV TROUPE_AGENT=alpha");
    expect(out).toContain(`ENV TROUPE_AGENT_ID=${st.id}`);
    expect(out).toContain(`ENV TROUPE_WORKSPACE=${h.repo}`);

    const transcript = workspaceLayout(h.repo).transcriptPath("alpha", st.id);
    expect(readFileSync(transcript, "utf8")).toContain("INFO {");
    expect(git(h.repo, "worktree", "list", "--porcelain")).toContain(`worktree ${st.worktree}`);
    // The main tree does not see troupe's own files as changes.
    expect(git(h.repo, "status", "--porcelain")).toBe("");
    expect(h.transitions("alpha")).toEqual(["booting.provisioning", "booting.starting", "working.active"]);
    // The same transitions are durable history.
    expect((await h.supervisor.history("alpha")).map((t) => `${t.from} -${t.event}-> ${t.to}`)).toEqual([
      "(none) -SPAWN-> booting.provisioning",
      "booting.provisioning -PROVISIONED-> booting.starting",
      "booting.starting -STARTED-> working.active",
    ]);
  });

  it("spawns from a given base ref and records parent and role", async () => {
    h = await Harness.start();
    writeFileSync(join(h.repo, "second.txt"), "2\n");
    git(h.repo, "add", ".");
    git(h.repo, "commit", "-q", "-m", "second");
    const first = git(h.repo, "rev-parse", "HEAD~1");
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang"), role: "lead" });
    const child = await h.supervisor.spawn({ name: "old", cmd: agent("--hang"), base: first, parent: "lead", role: "tester" });
    expect(child).toMatchObject({ parent: "lead", role: "tester" });
    expect(git(child.worktree!, "rev-parse", "HEAD")).toBe(first);
    expect(existsSync(join(child.worktree!, "second.txt"))).toBe(false);
    const all = await h.supervisor.status();
    expect(all.map((b) => b.name)).toEqual(["lead", "old"]);
  });

  it("refuses a second live builder of the same name, and replaces it when asked", async () => {
    h = await Harness.start();
    const first = await h.supervisor.spawn({ name: "dup", cmd: agent("--hang") });
    await expect(h.supervisor.spawn({ name: "dup", cmd: agent("--hang") })).rejects.toMatchObject({ code: "NAME_TAKEN" });
    const second = await h.supervisor.spawn({ name: "dup", cmd: agent("--hang"), replace: true });
    expect(second.id).not.toBe(first.id);
    expect(isProcessAlive(first.pid!)).toBe(false);
    const all = await h.supervisor.status({ all: true });
    expect(all.filter((b) => b.name === "dup").map((b) => b.state)).toEqual(["destroyed", "working"]);
  });

  it("rejects bad input with clear errors and creates nothing", async () => {
    h = await Harness.start();
    const bad: Array<[object, string]> = [
      [{ name: "../x", cmd: ["true"] }, "INVALID_NAME"],
      [{ name: "A B", cmd: ["true"] }, "INVALID_NAME"],
      [{ name: "", cmd: ["true"] }, "INVALID_NAME"],
      [{ name: "x".repeat(64), cmd: ["true"] }, "INVALID_NAME"],
      [{ name: "operator", cmd: ["true"] }, "INVALID_NAME"],
      [{ name: "ok", agent: "no-such-agent" }, "UNKNOWN_PROFILE"],
      [{ name: "ok" }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: [] }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], restart: "sometimes" }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], pty: "maybe" }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], parent: "nobody" }, "NOT_FOUND"],
      [{ name: "ok", cmd: ["true"], base: "no-such-ref" }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], env: { TROUPE_TOKEN: "x" } }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], policy: { stallMs: 100, zombieMs: 50 } }, "INVALID_ARGUMENT"],
      [{ name: "ok", cmd: ["true"], policy: { maxRestartz: 1 } }, "INVALID_ARGUMENT"],
    ];
    for (const [options, code] of bad) {
      const error = await h.supervisor.spawn(options as never).then(() => null, (e: unknown) => e);
      expect(isTroupeError(error), `${JSON.stringify(options)} should be refused`).toBe(true);
      expect((error as { code: string }).code, JSON.stringify(options)).toBe(code);
      expect((error as Error).message.length).toBeGreaterThan(20);
    }
    expect(await h.supervisor.status({ all: true })).toEqual([]);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
    expect(git(h.repo, "worktree", "list", "--porcelain").match(/^worktree /gm)).toHaveLength(1);
  });

  it("bad supervisor options are refused before anything is locked", async () => {
    h = await Harness.start();
    for (const options of [{ timings: { killTimeoutMs: -1 } }, { timings: { nope: 1 } }, { policy: { backoffJitter: 2 } }, { strategy: "all_for_none" }]) {
      await expect(createSupervisor({ workspace: h.repo, ...(options as object) })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
  });

  it("a directory that is not a git repository is refused and nothing is created there", async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "troupe-nogit-")));
    try {
      const error = await createSupervisor({ workspace: dir }).then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code: "NOT_A_GIT_REPO" });
      expect(existsSync(join(dir, ".troupe"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing command fails the spawn and rolls it back: no worktree, no branch, no process", async () => {
    h = await Harness.start();
    await expect(h.supervisor.spawn({ name: "ghost", cmd: ["/nonexistent/agent-binary"] })).rejects.toMatchObject({ code: "SPAWN_FAILED" });
    const [tomb] = await h.supervisor.status({ all: true });
    expect(tomb).toMatchObject({ name: "ghost", state: "destroyed" });
    expect(await h.supervisor.status()).toEqual([]);
    expect(existsSync(join(h.repo, ".troupe", "worktrees", "ghost"))).toBe(false);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
    expect(leftoverProcesses(h.repo)).toEqual([]);
  });
});

describe("spare pty host", () => {
  it("after the first spawn one host waits booted; the next spawn uses it, and close lets the spare go", async () => {
    const { hostProcesses } = await import("../helpers/invariants.js");
    const { connectPtyHost } = await import("../../src/actors/index.js");
    const { waitFor } = await import("../helpers/workspace.js");
    h = await Harness.start();
    await h.supervisor.spawn({ name: "first", cmd: agent("--hang") });
    const [spare] = await waitFor(() => (hostProcesses(h!.repo, { spares: true }).length === 1 ? hostProcesses(h!.repo, { spares: true }) : null), "a spare host");
    const second = await h.supervisor.spawn({ name: "second", cmd: agent("--hang") });
    const client = await connectPtyHost(workspaceLayout(h.repo).ptySocketPath(second.id));
    expect(client.identity.hostPid).toBe(spare);
    client.close();
    await waitFor(() => hostProcesses(h!.repo, { spares: true }).length === 1, "a new spare");
    await h.supervisor.close();
    await waitFor(() => hostProcesses(h!.repo, { spares: true }).length === 0, "the spare gone after close");
    // The builders' hosts outlive the supervisor, as always.
    expect(hostProcesses(h.repo)).toHaveLength(2);
  });
});
