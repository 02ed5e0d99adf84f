/**
 * Where a workspace's daemon lives. Shared by the daemon and the CLI, so it
 * imports only node builtins and the shared errors.
 *
 * The workspace is the repository's main working tree (DESIGN §9): a command
 * run inside a builder's worktree reaches the same daemon as one run in the
 * main tree. It is found the way `git rev-parse --git-common-dir` finds it;
 * the common cases are read straight from `.git` (no git process on the CLI's
 * hot path), anything unusual asks git itself.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { TroupeError } from "../shared/errors.js";

export interface WorkspaceInfo {
  /** The main working tree. */
  root: string;
  /** The git common dir (`<root>/.git` for an ordinary repository). */
  commonDir: string;
}

/** Unix socket paths are limited to 107 bytes on Linux; keep a margin. */
export const SOCKET_PATH_LIMIT = 100;

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

export interface DaemonPaths {
  troupeDir: string;
  runDir: string;
  logsDir: string;
  /** The socket the daemon listens on. */
  socket: string;
  /** When the socket lives outside `.troupe/run` (path too long), this file records where. */
  socketRecord: string;
  logFile: string;
}

export function daemonPaths(root: string): DaemonPaths {
  const troupeDir = join(root, ".troupe");
  const runDir = join(troupeDir, "run");
  const logsDir = join(troupeDir, "logs");
  const preferred = join(runDir, "daemon.sock");
  const socket = Buffer.byteLength(preferred) <= SOCKET_PATH_LIMIT ? preferred : join(shortSocketDir(root), "daemon.sock");
  return { troupeDir, runDir, logsDir, socket, socketRecord: join(runDir, "daemon.sock.path"), logFile: join(logsDir, "daemon.log") };
}

/** A short, owner-only directory for sockets whose natural path is too long: keyed by a hash of the workspace. */
export function shortSocketDir(root: string): string {
  const base = process.env.XDG_RUNTIME_DIR || tmpdir();
  return join(base, `troupe-${process.getuid?.() ?? 0}`, createHash("sha256").update(root).digest("hex").slice(0, 12));
}
