/**
 * Which workspace a directory belongs to. Shared by the daemon and the CLI,
 * so it imports only node builtins and the shared errors (the paths under
 * `.troupe/` are src/shared/layout.ts's).
 *
 * The workspace is the repository's main working tree (DESIGN §9): a command
 * run inside a builder's worktree reaches the same daemon as one run in the
 * main tree. It is found the way `git rev-parse --git-common-dir` finds it;
 * the common cases are read straight from `.git` (no git process on the CLI's
 * hot path), anything unusual asks git itself.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { TroupeError } from "../shared/errors.js";

export interface WorkspaceInfo {
  /** The main working tree. */
  root: string;
  /** The git common dir (`<root>/.git` for an ordinary repository). */
  commonDir: string;
}

export function findWorkspace(start: string = process.cwd()): WorkspaceInfo {
  const env = process.env;
  if (!env.GIT_DIR && !env.GIT_COMMON_DIR && !env.GIT_WORK_TREE) {
    const fast = findFromDotGit(resolve(start));
    if (fast) return fast;
  }
  return findViaGit(start);
}

function findFromDotGit(start: string): WorkspaceInfo | null {
  let dir = start;
  for (;;) {
    const dotGit = join(dir, ".git");
    let isDir: boolean | null = null;
    try {
      isDir = statSync(dotGit).isDirectory();
    } catch {
      isDir = null;
    }
    if (isDir === true) return { root: dir, commonDir: dotGit };
    if (isDir === false) {
      // A linked worktree (or a submodule): ".git" is a file "gitdir: <path>".
      let gitDir: string;
      try {
        const match = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"));
        if (!match) return null;
        gitDir = resolve(dir, match[1]!.trim());
      } catch {
        return null;
      }
      let common = gitDir;
      try {
        const commondir = readFileSync(join(gitDir, "commondir"), "utf8").trim();
        common = isAbsolute(commondir) ? commondir : resolve(gitDir, commondir);
      } catch {
        // no commondir file: the gitdir is the common dir (a submodule)
      }
      return basename(common) === ".git" ? { root: dirname(common), commonDir: common } : null;
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function findViaGit(start: string): WorkspaceInfo {
  const git = (...args: string[]): string =>
    execFileSync("git", args, { cwd: start, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  let common: string;
  try {
    common = resolve(start, git("rev-parse", "--path-format=absolute", "--git-common-dir"));
  } catch (error) {
    throw new TroupeError("NOT_A_GIT_REPO", `${start} is not inside a git repository: troupe works in one (run \`git init\` first, or cd into your project).`, { path: start }, { cause: error });
  }
  if (basename(common) === ".git") return { root: dirname(common), commonDir: common };
  try {
    return { root: git("rev-parse", "--show-toplevel"), commonDir: common };
  } catch (error) {
    throw new TroupeError("NOT_A_GIT_REPO", `${start} is in a git repository without a working tree (bare?): troupe needs one.`, { path: start }, { cause: error });
  }
}
