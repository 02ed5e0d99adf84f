import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { PtyHostClient } from "../../src/actors/index.js";
import { isProcessAlive, signalProcessTree } from "../../src/shared/proc.js";
import { git, processesOfWorkspace as processesIn, waitFor } from "../helpers/workspace.js";

export { git, processesIn, waitFor };

export const FAKE_AGENT = fileURLToPath(new URL("../fixtures/agents/fake-agent.mjs", import.meta.url));
export const LAUNCH_HOST = fileURLToPath(new URL("../fixtures/agents/launch-host.mjs", import.meta.url));

/** A fresh temp dir (realpath: /tmp may be a symlink). Short, so socket paths stay under the limit. */
export function tempDir(prefix = "troupe-act-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}


/** A real git repository on `main` with one commit. */
export function makeRepo(dir: string): string {
  git(dir, "init", "-q", "-b", "main");
  writeFileSync(join(dir, "README.md"), "test repo\n");
  git(dir, "add", "README.md");
  git(dir, "commit", "-q", "-m", "initial");
  return dir;
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
