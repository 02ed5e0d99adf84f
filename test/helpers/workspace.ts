import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";

/** A real git repository in a temp dir, with one commit. */
export function makeRepo(prefix = "troupe-test-"): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  git(dir, "init", "-q", "-b", "main");
  writeFileSync(join(dir, "README.md"), "test repo\n");
  git(dir, "add", "README.md");
  git(dir, "commit", "-q", "-m", "initial");
  return dir;
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/**
 * Ends every process a test left in a workspace (pty hosts, agents and their
 * children), then removes the dir. Only processes that belong to this
 * workspace are touched: those whose cwd or command line lies inside it.
 */
export function cleanupWorkspace(dir: string): void {
  for (const pid of processesOfWorkspace(dir)) {
    signalProcessTree(pid, "SIGKILL");
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && processesOfWorkspace(dir).length > 0) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Pids (other than ours) whose cwd or argv lies inside `dir`. */
export function processesOfWorkspace(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !isProcessAlive(pid)) continue;
    let cwd = "";
    let cmdline = "";
    try {
      cwd = realpathOrEmpty(`/proc/${pid}/cwd`);
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (cwd === dir || cwd.startsWith(`${dir}/`) || cmdline.includes(dir) || holdsFileIn(pid, dir)) found.push(pid);
  }
  return found;
}

/**
 * A pty host that took work renames itself ("troupe pty-host <name> <id>")
 * and runs in "/": only the files it holds open (transcript, logs, socket)
 * say which workspace it serves.
 */
function holdsFileIn(pid: number, dir: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${dir}/`);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function realpathOrEmpty(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return "";
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
}

export { existsSync };
