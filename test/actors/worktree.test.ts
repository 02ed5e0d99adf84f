import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  addWorktree,
  countCommitsAhead,
  deleteBranch,
  gitCommonDir,
  gitTopLevel,
  isWorktreeDirty,
  listBranches,
  listWorktrees,
  removeWorktree,
  resolveRef,
  worktreeChanges,
} from "../../src/actors/index.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { git, makeRepo, tempDir } from "./helpers.js";

let dir: string;
let repo: string;

beforeEach(() => {
  dir = tempDir("troupe-wt-");
  repo = join(dir, "repo");
  mkdirSync(repo);
  makeRepo(repo);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

describe("repository discovery", () => {
  it("finds the main working tree from its root, a subdirectory and a linked worktree", async () => {
    mkdirSync(join(repo, "src", "deep"), { recursive: true });
    const path = join(repo, ".troupe", "worktrees", "a");
    await addWorktree({ repo, path, branch: "troupe/a" });
    expect(await gitTopLevel(repo)).toBe(repo);
    expect(await gitTopLevel(join(repo, "src", "deep"))).toBe(repo);
    expect(await gitTopLevel(path)).toBe(repo);
    expect(await gitCommonDir(path)).toBe(join(repo, ".git"));
  });

  it("rejects a directory outside any repository with NOT_A_GIT_REPO", async () => {
    const plain = join(dir, "plain");
    mkdirSync(plain);
    const error = await rejection(gitTopLevel(plain));
    expect(isTroupeError(error, "NOT_A_GIT_REPO")).toBe(true);
    expect(error.message).toContain(plain);
    expect(error.message).toMatch(/not inside a git repository.*git init/);
    expect(isTroupeError(await rejection(gitTopLevel(join(dir, "missing"))), "NOT_A_GIT_REPO")).toBe(true);
    expect(isTroupeError(await rejection(listWorktrees(plain)), "NOT_A_GIT_REPO")).toBe(true);
  });

  it("resolves refs to commits and refuses unknown or option-like refs", async () => {
    const head = git(repo, "rev-parse", "HEAD");
    expect(await resolveRef(repo, "HEAD")).toBe(head);
    expect(await resolveRef(repo, "main")).toBe(head);
    expect(isTroupeError(await rejection(resolveRef(repo, "no-such-ref")), "INVALID_ARGUMENT")).toBe(true);
    expect(isTroupeError(await rejection(resolveRef(repo, "--output=/tmp/x")), "INVALID_ARGUMENT")).toBe(true);
  });
});

describe("addWorktree", () => {
  it("creates troupe/<name> from HEAD by default", async () => {
    const path = join(repo, ".troupe", "worktrees", "alpha");
    const made = await addWorktree({ repo, path, branch: "troupe/alpha" });
    expect(made).toEqual({ path, branch: "troupe/alpha", head: git(repo, "rev-parse", "HEAD"), branchExisted: false, created: true });
    expect(readFileSync(join(path, "README.md"), "utf8")).toBe("test repo\n");
    expect(git(path, "rev-parse", "--abbrev-ref", "HEAD")).toBe("troupe/alpha");
    const listed = await listWorktrees(repo);
    expect(listed).toHaveLength(2);
    expect(listed[0]).toMatchObject({ path: repo, branch: "main", main: true, bare: false });
    expect(listed[1]).toMatchObject({ path, branch: "troupe/alpha", main: false, detached: false, head: made.head });
    expect(await listBranches(repo)).toEqual(["troupe/alpha"]);
  });

  it("starts from a given ref", async () => {
    git(repo, "checkout", "-q", "-b", "feature");
    writeFileSync(join(repo, "feature.txt"), "feature\n");
    git(repo, "add", "feature.txt");
    git(repo, "commit", "-q", "-m", "feature");
    const featureHead = git(repo, "rev-parse", "HEAD");
    git(repo, "checkout", "-q", "main");

    const path = join(dir, "wt-feature");
    const made = await addWorktree({ repo, path, branch: "troupe/feat", base: "feature" });
    expect(made.head).toBe(featureHead);
    expect(existsSync(join(path, "feature.txt"))).toBe(true);
    expect(await countCommitsAhead(repo, "main", "troupe/feat")).toBe(1);
    expect(await countCommitsAhead(repo, "feature", "troupe/feat")).toBe(0);
  });

  it("refuses an unknown base or a bad branch name and creates nothing", async () => {
    const path = join(dir, "wt-bad");
    expect(isTroupeError(await rejection(addWorktree({ repo, path, branch: "troupe/bad", base: "nope" })), "INVALID_ARGUMENT")).toBe(true);
    expect(isTroupeError(await rejection(addWorktree({ repo, path, branch: "troupe/a..b" })), "INVALID_ARGUMENT")).toBe(true);
    expect(isTroupeError(await rejection(addWorktree({ repo, path, branch: "-D" })), "INVALID_ARGUMENT")).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(await listBranches(repo, "")).toEqual(["main"]);
    expect(await listWorktrees(repo)).toHaveLength(1);
  });

  it("reuses an existing branch no worktree uses, and refuses one that is checked out", async () => {
    git(repo, "branch", "troupe/kept");
    const path = join(dir, "wt-kept");
    const made = await addWorktree({ repo, path, branch: "troupe/kept", base: "does-not-matter" });
    expect(made).toMatchObject({ branch: "troupe/kept", branchExisted: true, created: true });
    expect(git(path, "rev-parse", "--abbrev-ref", "HEAD")).toBe("troupe/kept");

    // the same call again is a no-op
    expect(await addWorktree({ repo, path, branch: "troupe/kept" })).toMatchObject({ created: false, path });

    const error = await rejection(addWorktree({ repo, path: join(dir, "wt-second"), branch: "troupe/kept" }));
    expect(isTroupeError(error, "SPAWN_FAILED")).toBe(true);
    expect(error.message).toContain(path);
    expect(existsSync(join(dir, "wt-second"))).toBe(false);
  });
});

describe("dirty worktrees and removal", () => {
  it("detects untracked and modified files", async () => {
    const path = join(dir, "wt-dirty");
    await addWorktree({ repo, path, branch: "troupe/dirty" });
    expect(await isWorktreeDirty(path)).toBe(false);
    writeFileSync(join(path, "notes.txt"), "scratch\n");
    expect(await isWorktreeDirty(path)).toBe(true);
    writeFileSync(join(path, "README.md"), "changed\n");
    expect((await worktreeChanges(path)).sort()).toEqual([" M README.md", "?? notes.txt"]);
    // ignored files do not count
    rmSync(join(path, "notes.txt"));
    git(path, "checkout", "--", "README.md");
    writeFileSync(join(path, ".gitignore"), "*.log\n");
    git(path, "add", ".gitignore");
    git(path, "commit", "-q", "-m", "ignore logs");
    writeFileSync(join(path, "build.log"), "noise\n");
    expect(await isWorktreeDirty(path)).toBe(false);
  });

  it("refuses to remove a dirty worktree without force, naming the files", async () => {
    const path = join(dir, "wt-keep");
    await addWorktree({ repo, path, branch: "troupe/keep" });
    writeFileSync(join(path, "work-in-progress.ts"), "// unsaved\n");
    writeFileSync(join(path, "README.md"), "edited\n");
    const error = await rejection(removeWorktree({ repo, path, branch: "troupe/keep" }));
    expect(isTroupeError(error, "WORKTREE_DIRTY")).toBe(true);
    expect(error.message).toContain("work-in-progress.ts");
    expect(error.message).toContain("README.md");
    expect(error.message).toMatch(/commit/);
    expect(error.message).toMatch(/force/);
    // nothing changed
    expect(readFileSync(join(path, "work-in-progress.ts"), "utf8")).toBe("// unsaved\n");
    expect(await listBranches(repo)).toEqual(["troupe/keep"]);
    expect((await listWorktrees(repo)).map((w) => w.path)).toContain(path);
  });

  it("removes a dirty worktree with force, deletes its branch, and is idempotent", async () => {
    const path = join(dir, "wt-gone");
    await addWorktree({ repo, path, branch: "troupe/gone" });
    writeFileSync(join(path, "junk.txt"), "junk\n");
    await removeWorktree({ repo, path, branch: "troupe/gone", force: true });
    expect(existsSync(path)).toBe(false);
    expect((await listWorktrees(repo)).map((w) => w.path)).toEqual([repo]);
    expect(await listBranches(repo)).toEqual([]);
    // again: nothing to do, no error
    await removeWorktree({ repo, path, branch: "troupe/gone", force: true });
    await removeWorktree({ repo, path: join(dir, "never-existed") });
    expect(await deleteBranch(repo, "troupe/gone")).toBe(false);
  });

  it("removes a clean worktree without force and keeps the branch unless asked", async () => {
    const path = join(dir, "wt-clean");
    await addWorktree({ repo, path, branch: "troupe/clean" });
    writeFileSync(join(path, "done.txt"), "done\n");
    git(path, "add", "done.txt");
    git(path, "commit", "-q", "-m", "work");
    await removeWorktree({ repo, path });
    expect(existsSync(path)).toBe(false);
    expect(await listBranches(repo)).toEqual(["troupe/clean"]);
    expect(await deleteBranch(repo, "troupe/clean")).toBe(true);
    expect(await listBranches(repo)).toEqual([]);
  });

  it("prunes a worktree whose directory was deleted behind git's back", async () => {
    const path = join(dir, "wt-vanished");
    await addWorktree({ repo, path, branch: "troupe/vanished" });
    rmSync(path, { recursive: true, force: true });
    await removeWorktree({ repo, path, branch: "troupe/vanished" });
    expect((await listWorktrees(repo)).map((w) => w.path)).toEqual([repo]);
    expect(await listBranches(repo)).toEqual([]);
    // and the name can be used again
    await addWorktree({ repo, path, branch: "troupe/vanished" });
    expect(existsSync(join(path, "README.md"))).toBe(true);
  });

  it("never removes the main working tree, nor a branch checked out somewhere", async () => {
    expect(isTroupeError(await rejection(removeWorktree({ repo, path: repo, force: true })), "INVALID_ARGUMENT")).toBe(true);
    const path = join(dir, "wt-busy");
    await addWorktree({ repo, path, branch: "troupe/busy" });
    expect(isTroupeError(await rejection(deleteBranch(repo, "troupe/busy")), "INVALID_ARGUMENT")).toBe(true);
    expect(existsSync(join(repo, "README.md"))).toBe(true);
  });
});

describe("listBranches", () => {
  it("lists the branches under a prefix", async () => {
    git(repo, "branch", "troupe/b");
    git(repo, "branch", "troupe/a");
    git(repo, "branch", "other");
    git(repo, "branch", "troupe-not");
    expect(await listBranches(repo)).toEqual(["troupe/a", "troupe/b"]);
    expect(await listBranches(repo, "oth")).toEqual(["other"]);
    expect(await listBranches(repo, "")).toEqual(["main", "other", "troupe-not", "troupe/a", "troupe/b"]);
  });
});
