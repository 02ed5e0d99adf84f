/** What several benchmarks share: a throwaway git repository, a real daemon on it, order statistics. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DaemonClient } from "../src/client/rpc.js";
import { isProcessAlive, signalProcessTree } from "../src/shared/proc.js";
import { cleanupWorkspace } from "../test/helpers/workspace.js";

/** The built CLI (`npm run bench` builds first). */
export const BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), ".."), "bin", "troupe.js");

/** A real git repository with one commit, in a temp dir (the caller removes it). */
export function makeBenchRepo(prefix: string): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const git = (...args: string[]) => execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@troupe.invalid", ...args], { cwd: dir, stdio: "ignore" });
  git("init", "-q", "-b", "main");
  writeFileSync(join(dir, "README.md"), "bench\n");
  git("add", "README.md");
  git("commit", "-q", "-m", "initial");
  return dir;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The value below which `q` (0..1) of the samples fall. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))]!;
}

export interface BenchDaemon {
  repo: string;
  /** The environment the CLI runs with: no TROUPE_* of the caller, quiet logs. */
  env: NodeJS.ProcessEnv;
  pid: number;
  client: DaemonClient;
}

/**
 * Runs `body` against a real daemon, started by the real CLI on a fresh
 * repository, then stops it and removes everything (agents and pty hosts a
 * failed run left included).
 */
export async function withBenchDaemon(prefix: string, body: (daemon: BenchDaemon) => Promise<void>): Promise<void> {
  const repo = makeBenchRepo(prefix);
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("TROUPE_") && key !== "TROUPE_LOG_LEVEL") delete env[key];
  env.TROUPE_LOG_LEVEL ??= "warn";
  let pid: number | null = null;
  let client: DaemonClient | null = null;
  try {
    const started = JSON.parse(execFileSync(process.execPath, [BIN, "daemon", "start", "--json"], { cwd: repo, env, encoding: "utf8" })) as { pid: number; socket: string };
    pid = started.pid;
    client = await DaemonClient.connect(started.socket);
    await client.handshake();
    await body({ repo, env, pid, client });
  } finally {
    client?.close();
    if (pid !== null) {
      spawnSync(process.execPath, [BIN, "daemon", "stop"], { cwd: repo, env, stdio: "ignore" });
      if (isProcessAlive(pid)) signalProcessTree(pid, "SIGKILL");
    }
    cleanupWorkspace(repo);
  }
}

/** A process's resident memory: VmRSS, and RssAnon (its own, without the shared node binary). Linux. */
export interface Memory {
  rss: number;
  anon: number;
}

export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") * 1024, anon: kb("RssAnon") * 1024 };
}
