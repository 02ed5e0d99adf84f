import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";
import type { PtyHostClient } from "../../src/actors/index.js";

export const FAKE_AGENT = fileURLToPath(new URL("../fixtures/agents/fake-agent.mjs", import.meta.url));
export const LAUNCH_HOST = fileURLToPath(new URL("../fixtures/agents/launch-host.mjs", import.meta.url));

/** A fresh temp dir (realpath: /tmp may be a symlink). Short, so socket paths stay under the limit. */
export function tempDir(prefix = "troupe-act-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** A real git repository on `main` with one commit. */
export function makeRepo(dir: string): string {
  git(dir, "init", "-q", "-b", "main");
  writeFileSync(join(dir, "README.md"), "test repo\n");
  git(dir, "add", "README.md");
  git(dir, "commit", "-q", "-m", "initial");
  return dir;
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20_000, intervalMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Everything a client saw (scrollback, then live output), with event-driven waits. */
export class Transcript {
  text: string;
  private waiters: Array<() => void> = [];

  constructor(client: PtyHostClient) {
    this.text = client.scrollback;
    client.on("output", (data) => {
      this.text += data;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Resolves with the first match of `pattern` in the output, waiting for it if needed. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern} in output: ${JSON.stringify(this.text.slice(-500))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** Live pids whose cwd or command line lies inside `dir` (a test's leftovers), ours excluded. */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !isProcessAlive(pid)) continue;
    let cwd = "";
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // gone, or not ours to read
    }
    if (cwd === dir || cwd.startsWith(`${dir}/`) || cmdline.includes(dir)) found.push(pid);
  }
  return found;
}

/**
 * Kills (by pid, SIGKILL) every process a test left behind — those it
 * recorded, and any whose cwd or command line lies inside `dir` — waits for
 * them to be gone, then removes `dir`.
 */
export async function cleanup(dir: string, recorded: Array<{ pid: number; start?: number | null }> = []): Promise<void> {
  for (const { pid, start } of recorded) {
    if (isProcessAlive(pid, start ?? null)) signalProcessTree(pid, "SIGKILL");
  }
  for (const pid of processesIn(dir)) signalProcessTree(pid, "SIGKILL");
  await waitFor(() => recorded.every(({ pid, start }) => !isProcessAlive(pid, start ?? null)) && processesIn(dir).length === 0, `test processes in ${dir} to die`, 10_000).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

/** The agent's environment for tests: this process's, as strings. */
export function agentEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("TROUPE_")) env[key] = value;
  return { ...env, ...extra };
}
