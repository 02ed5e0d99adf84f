/**
 * Git worktrees and branches for builders (DESIGN §2, §7). Git runs through
 * execa with argv arrays only: never a shell, and every user-supplied ref or
 * branch is validated so it cannot be read as an option.
 */
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, resolve as resolvePath } from "node:path";
import { execa } from "execa";
import { TroupeError } from "../shared/errors.js";
import { KeyedSerialQueue } from "../shared/serial-queue.js";

export interface WorktreeInfo {
  path: string;
  /** The checked-out commit, null for a bare entry. */
  head: string | null;
  /** Short branch name (`troupe/x`), null when detached or bare. */
  branch: string | null;
  detached: boolean;
  bare: boolean;
  locked: boolean;
  prunable: boolean;
  /** The repository's main working tree (always listed first). */
  main: boolean;
}

export interface AddWorktreeOptions {
  repo: string;
  path: string;
  branch: string;
  /** Where a new branch starts (default HEAD). Ignored when the branch already exists. */
  base?: string;
}

export interface AddedWorktree {
  path: string;
  branch: string;
  /** The commit checked out in the new worktree. */
  head: string;
  /** The branch existed before this call (it was reused, not created). */
  branchExisted: boolean;
  /** False when `path` already was a worktree on `branch` (nothing was done). */
  created: boolean;
}

export interface RemoveWorktreeOptions {
  repo: string;
  path: string;
  /** Also delete this branch (even if it has commits not merged anywhere). */
  branch?: string;
  /** Throw away uncommitted changes (and remove a locked worktree). */
  force?: boolean;
}

interface GitResult {
  ok: boolean;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Variables that would point git at another repository than `cwd`'s (set when
 * troupe runs inside a git hook, say): always cleared.
 */
const GIT_LOCATION_VARIABLES = { GIT_DIR: undefined, GIT_WORK_TREE: undefined, GIT_INDEX_FILE: undefined, GIT_COMMON_DIR: undefined };

async function git(cwd: string, args: string[]): Promise<GitResult> {
  const result = await execa("git", args, {
    cwd,
    reject: false,
    stdin: "ignore",
    env: { ...GIT_LOCATION_VARIABLES, LC_ALL: "C", GIT_TERMINAL_PROMPT: "0" },
  });
  if (result.exitCode === undefined) {
    // git never ran
    if (!existsSync(cwd)) return { ok: false, exitCode: undefined, stdout: "", stderr: `${cwd} does not exist` };
    if ((result as { code?: string }).code === "ENOENT") throw new TroupeError("SPAWN_FAILED", "git is not installed or not on PATH; troupe needs git.", { cwd });
  }
  const stderr = typeof result.stderr === "string" ? result.stderr.trim() : "";
  return {
    ok: result.exitCode === 0,
    exitCode: result.exitCode,
    stdout: typeof result.stdout === "string" ? result.stdout : "",
    stderr: stderr || (result.failed ? (result.shortMessage ?? "") : ""),
  };
}

/** Runs git and throws a TroupeError (`code`) with git's own complaint when it fails. */
async function gitOrThrow(cwd: string, args: string[], code: "SPAWN_FAILED" | "INVALID_ARGUMENT" | "WORKTREE_DIRTY", what: string): Promise<string> {
  const result = await git(cwd, args);
  if (result.ok) return result.stdout;
  if (/not a git repository/i.test(result.stderr)) throw notARepo(cwd, result.stderr);
  throw new TroupeError(code, `${what}: ${firstLines(result.stderr)}`, { cwd, args, stderr: result.stderr });
}

function notARepo(dir: string, reason: string): TroupeError {
  return new TroupeError(
    "NOT_A_GIT_REPO",
    `${dir} is not inside a git repository (${firstLines(reason) || "git found none"}). Run troupe inside a git repository, or create one with \`git init\` and a first commit.`,
    { dir },
  );
}

function firstLines(text: string): string {
  return text.split("\n").filter((line) => line.trim() !== "").slice(0, 3).join(" ").trim();
}

function assertDir(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw notARepo(dir, "the directory does not exist");
  }
  if (!isDir) throw notARepo(dir, "not a directory");
}

function assertRefArg(value: string, what: string): void {
  if (typeof value !== "string" || value === "" || value.startsWith("-") || /[\0\n]/.test(value)) {
    throw new TroupeError("INVALID_ARGUMENT", `Invalid ${what} ${JSON.stringify(value)}.`, { [what]: value });
  }
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // a missing path: canonicalise its closest existing ancestor
    const parent = dirname(path);
    return parent === path ? path : resolvePath(canonical(parent), basename(path));
  }
}

function samePath(a: string, b: string): boolean {
  return canonical(a) === canonical(b);
}

// ---- repository -----------------------------------------------------------------

/** The repository's common git directory (shared by all its worktrees), absolute. */
export async function gitCommonDir(cwd: string): Promise<string> {
  assertDir(cwd);
  const result = await git(cwd, ["rev-parse", "--path-format=absolute", "--git-common-dir"]);
  if (!result.ok) throw notARepo(cwd, result.stderr);
  return canonical(result.stdout.trim());
}

/**
 * The repository's main working tree, from anywhere inside it — including
 * from inside one of its linked worktrees (DESIGN §9: one daemon per workspace).
 */
export async function gitTopLevel(cwd: string): Promise<string> {
  const common = await gitCommonDir(cwd);
  if (basename(common) === ".git") return canonical(dirname(common));
  // A separate git dir (`git init --separate-git-dir`) or a bare repository: ask git.
  const main = (await listWorktrees(cwd))[0];
  if (!main || main.bare) throw notARepo(cwd, "a bare repository has no working tree");
  return canonical(main.path);
}

/** The commit `ref` names, as a full sha. */
export async function resolveRef(repo: string, ref: string): Promise<string> {
  assertRefArg(ref, "ref");
  assertDir(repo);
  const result = await git(repo, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
  if (result.ok) return result.stdout.trim();
  if (/not a git repository/i.test(result.stderr)) throw notARepo(repo, result.stderr);
  if (ref === "HEAD") {
    throw new TroupeError("INVALID_ARGUMENT", `HEAD of ${repo} does not point at a commit (a repository without commits?). Make a first commit, or pass a base ref.`, { repo, ref });
  }
  throw new TroupeError("INVALID_ARGUMENT", `Unknown git ref "${ref}" in ${repo}: no branch, tag or commit by that name.`, { repo, ref });
}

/** How many commits `branch` has that `base` does not. */
export async function countCommitsAhead(repo: string, base: string, branch: string): Promise<number> {
  assertRefArg(base, "ref");
  assertRefArg(branch, "branch");
  const out = await gitOrThrow(repo, ["rev-list", "--count", `${base}..${branch}`], "INVALID_ARGUMENT", `Cannot compare ${branch} with ${base}`);
  return Number(out.trim());
}

// ---- worktrees ------------------------------------------------------------------------

/** Every worktree of the repository (`git worktree list --porcelain`), the main one first. */
export async function listWorktrees(repo: string): Promise<WorktreeInfo[]> {
  assertDir(repo);
  const out = await gitOrThrow(repo, ["worktree", "list", "--porcelain"], "INVALID_ARGUMENT", `Cannot list the worktrees of ${repo}`);
  const worktrees: WorktreeInfo[] = [];
  let current: WorktreeInfo | null = null;
  for (const line of out.split("\n")) {
    if (line.startsWith("worktree ")) {
      current = { path: line.slice("worktree ".length), head: null, branch: null, detached: false, bare: false, locked: false, prunable: false, main: worktrees.length === 0 };
      worktrees.push(current);
    } else if (!current) {
      continue;
    } else if (line.startsWith("HEAD ")) {
      current.head = line.slice(5).trim();
    } else if (line.startsWith("branch ")) {
      const ref = line.slice(7).trim();
      current.branch = ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : ref;
    } else if (line === "detached") {
      current.detached = true;
    } else if (line === "bare") {
      current.bare = true;
    } else if (line === "locked" || line.startsWith("locked ")) {
      current.locked = true;
    } else if (line === "prunable" || line.startsWith("prunable ")) {
      current.prunable = true;
    }
  }
  return worktrees;
}

/**
 * git keeps one administrative directory per repository for its worktrees
 * (`.git/worktrees/`); two `worktree add`/`remove`/`prune` at once can read
 * each other's half-written entries. Within a process they take turns, per
 * repository.
 */
const worktreeTurns = new KeyedSerialQueue<string>();

/**
 * Creates a worktree at `path` on a new branch `branch` started at `base`
 * (default HEAD): `git worktree add -b <branch> <path> <base>`. An existing
 * branch no worktree uses is reused (`git worktree add <path> <branch>`); one
 * already checked out elsewhere is refused. Calling it again for a worktree
 * that already exists on that branch changes nothing.
 */
export async function addWorktree(options: AddWorktreeOptions): Promise<AddedWorktree> {
  return worktreeTurns.run(canonicalRepoKey(options.repo), () => addWorktreeNow(options));
}

async function addWorktreeNow(options: AddWorktreeOptions): Promise<AddedWorktree> {
  const { repo, branch } = options;
  assertDir(repo);
  const path = isAbsolute(options.path) ? options.path : resolvePath(repo, options.path);
  assertRefArg(branch, "branch");
  // The common case in one git call: a new branch at a new path. Anything
  // unusual (branch or path taken, bad ref) makes it fail without side effects
  // and is then diagnosed by the careful path below.
  if (options.base !== undefined && /^[0-9a-f]{40}$/.test(options.base) && !existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const fast = await git(repo, ["worktree", "add", "-q", "-b", branch, path, options.base]);
    if (fast.ok) return { path, branch, head: options.base, branchExisted: false, created: true };
  }
  const valid = await git(repo, ["check-ref-format", "--branch", branch]);
  if (!valid.ok) throw new TroupeError("INVALID_ARGUMENT", `"${branch}" is not a valid branch name.`, { branch });

  const worktrees = await listWorktrees(repo);
  const atPath = worktrees.find((worktree) => samePath(worktree.path, path));
  if (atPath) {
    if (atPath.branch === branch && existsSync(path)) {
      return { path, branch, head: atPath.head ?? (await resolveRef(path, "HEAD")), branchExisted: true, created: false };
    }
    if (existsSync(path)) {
      throw new TroupeError("SPAWN_FAILED", `${path} is already a worktree of ${repo} (on ${atPath.branch ?? "a detached HEAD"}); remove it first.`, { path, branch: atPath.branch });
    }
    // registered but its directory is gone: forget it, then add afresh
    await git(repo, ["worktree", "prune"]);
  }

  const branchExisted = (await git(repo, ["show-ref", "--verify", "--quiet", `refs/heads/${branch}`])).ok;
  let args: string[];
  if (branchExisted) {
    const user = worktrees.find((worktree) => worktree.branch === branch && existsSync(worktree.path));
    if (user) {
      throw new TroupeError("SPAWN_FAILED", `Branch ${branch} is already checked out in ${user.path}; a branch can be used by one worktree only. Remove that worktree or pick another name.`, { branch, path: user.path });
    }
    args = ["worktree", "add", path, branch];
  } else {
    const start = await resolveRef(repo, options.base ?? "HEAD");
    args = ["worktree", "add", "-b", branch, path, start];
  }
  mkdirSync(dirname(path), { recursive: true });
  await gitOrThrow(repo, args, "SPAWN_FAILED", `git worktree add ${path} failed`);
  const head = await resolveRef(path, "HEAD");
  return { path, branch, head, branchExisted, created: true };
}

/** Uncommitted changes in a worktree, as `git status --porcelain` lines (" M file", "?? new"). Ignored files do not count. */
export async function worktreeChanges(path: string): Promise<string[]> {
  assertDir(path);
  const out = await gitOrThrow(path, ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignore-submodules=none"], "INVALID_ARGUMENT", `Cannot read the status of ${path}`);
  const entries = out.split("\0");
  const changes: string[] = [];
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    if (entry === "") continue;
    changes.push(entry);
    if (entry[0] === "R" || entry[0] === "C") index++; // the rename's source path follows
  }
  return changes;
}

/** True when the worktree has uncommitted changes (tracked or untracked; ignored files do not count). */
export async function isWorktreeDirty(path: string): Promise<boolean> {
  return (await worktreeChanges(path)).length > 0;
}

/**
 * Removes the worktree at `path` (its directory and git's record of it), then
 * prunes, and deletes `branch` when given. A worktree with uncommitted
 * changes is refused (WORKTREE_DIRTY) unless `force`. A worktree that is
 * already gone is fine: removal is idempotent.
 */
export async function removeWorktree(options: RemoveWorktreeOptions): Promise<void> {
  return worktreeTurns.run(canonicalRepoKey(options.repo), () => removeWorktreeNow(options));
}

function canonicalRepoKey(repo: string): string {
  try {
    return realpathSync(repo);
  } catch {
    return repo;
  }
}

async function removeWorktreeNow(options: RemoveWorktreeOptions): Promise<void> {
  const { repo, force = false } = options;
  assertDir(repo);
  const path = isAbsolute(options.path) ? options.path : resolvePath(repo, options.path);
  const worktrees = await listWorktrees(repo);
  const entry = worktrees.find((worktree) => samePath(worktree.path, path));
  if (entry?.main || samePath(path, repo)) {
    throw new TroupeError("INVALID_ARGUMENT", `${path} is the repository's main working tree; it is never removed.`, { path });
  }

  if (entry && existsSync(path)) {
    if (!force) {
      const changes = await worktreeChanges(path);
      if (changes.length > 0) throw dirty(path, changes);
    }
    const result = await git(repo, ["worktree", "remove", ...(force ? ["--force", "--force"] : []), path]);
    if (!result.ok && existsSync(path)) {
      if (!force) {
        throw new TroupeError("WORKTREE_DIRTY", `Cannot remove the worktree ${path}: ${firstLines(result.stderr)}. Pass force to remove it anyway.`, { path, stderr: result.stderr });
      }
      // forced: whatever git objects to, the directory goes
      rmSync(path, { recursive: true, force: true });
    }
  } else if (!entry && existsSync(path)) {
    // A directory git does not know as a worktree (a crash mid-add, or already pruned).
    const leftovers = safeReaddir(path);
    if (leftovers.length > 0 && !force) {
      throw new TroupeError("WORKTREE_DIRTY", `${path} is not a registered worktree of ${repo} but still holds ${leftovers.length} file(s) (${leftovers.slice(0, 5).join(", ")}); move them away, or pass force to delete the directory.`, { path, files: leftovers });
    }
    rmSync(path, { recursive: true, force: true });
  }
  await git(repo, ["worktree", "prune"]);
  if (options.branch) await deleteBranch(repo, options.branch);
}

function dirty(path: string, changes: string[]): TroupeError {
  const shown = changes.slice(0, 10).map((change) => change.trim()).join(", ");
  const more = changes.length > 10 ? ` and ${changes.length - 10} more` : "";
  return new TroupeError(
    "WORKTREE_DIRTY",
    `The worktree ${path} has uncommitted changes (${shown}${more}); commit them, or remove with force to throw them away.`,
    { path, files: changes },
  );
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---- branches --------------------------------------------------------------------------

/** Local branches whose name starts with `prefix` (default `troupe/`), sorted. */
export async function listBranches(repo: string, prefix = "troupe/"): Promise<string[]> {
  assertDir(repo);
  const out = await gitOrThrow(repo, ["for-each-ref", "--format=%(refname)", "refs/heads/"], "INVALID_ARGUMENT", `Cannot list the branches of ${repo}`);
  return out
    .split("\n")
    .map((ref) => ref.trim())
    .filter((ref) => ref.startsWith(`refs/heads/${prefix}`))
    .map((ref) => ref.slice("refs/heads/".length))
    .sort();
}

/**
 * Deletes a local branch, merged or not (the caller decides what may be
 * lost). A branch that does not exist is fine; one checked out in a worktree
 * is refused. Resolves true when a branch was deleted.
 */
export async function deleteBranch(repo: string, branch: string): Promise<boolean> {
  assertRefArg(branch, "branch");
  assertDir(repo);
  const exists = await git(repo, ["show-ref", "--verify", "--quiet", `refs/heads/${branch}`]);
  if (!exists.ok) {
    if (/not a git repository/i.test(exists.stderr)) throw notARepo(repo, exists.stderr);
    return false;
  }
  const result = await git(repo, ["branch", "-D", branch]);
  if (result.ok) return true;
  const stillThere = (await git(repo, ["show-ref", "--verify", "--quiet", `refs/heads/${branch}`])).ok;
  if (!stillThere) return false; // deleted concurrently
  throw new TroupeError("INVALID_ARGUMENT", `Cannot delete branch ${branch}: ${firstLines(result.stderr)}. Remove the worktree that uses it first.`, { repo, branch, stderr: result.stderr });
}
