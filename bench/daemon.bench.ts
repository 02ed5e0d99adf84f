/**
 * Daemon figures (DESIGN §12), through the real daemon over its socket:
 *
 * - daemon RSS with 100 builders (budget ≤ 100 MB), beside the RSS of a bare
 *   idle Node process measured in the same run;
 * - pty host RSS with one builder (budget ≤ 56 MB with the screen emulator), beside the same baseline;
 * - destroy (no budget; the peer's cleanup is 450–490 ms, aim for half),
 *   beside the raw work any destroy must do: `git worktree remove --force`,
 *   `git branch -D` and ending one process.
 *
 * RSS is VmRSS from /proc/<pid>/status (Linux); RssAnon, the process's own
 * memory without the shared node binary, is printed beside it.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../test/helpers/workspace.js";
import { median, memoryOf, withBenchDaemon, type Memory } from "./common.js";

const BUILDERS = Number(process.env.TROUPE_BENCH_DAEMON_BUILDERS ?? 100);
const DESTROYS = Number(process.env.TROUPE_BENCH_DESTROYS ?? 10);


function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** A bare Node process that has started and gone idle: the floor of any Node process's memory. */
async function bareNodeMemory(): Promise<Memory> {
  const child = spawn(process.execPath, ["-e", "process.stdout.write('up\\n'); setInterval(() => {}, 1e9)"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    await new Promise<void>((ready, fail) => {
      child.stdout!.once("data", () => ready());
      child.once("error", fail);
    });
    // let start-up garbage settle the way an idle daemon's does
    await new Promise((settle) => setTimeout(settle, 500));
    return memoryOf(child.pid!);
  } finally {
    child.kill("SIGKILL");
  }
}

export async function run(): Promise<void> {
  console.log("\n## Daemon: memory and destroy (issues 3 and 6)");
  await withBenchDaemon("troupe-bench-daemon-", async ({ repo, pid: daemonPid, client: c }) => {
    const bare = await bareNodeMemory();

    await c.call("spawn", { name: "one", cmd: ["sleep", "100000"], restart: "temporary" });
    const [one] = await c.call("status", {});
    const hostPid = parentOf(one!.pid!);
    const host = memoryOf(hostPid);

    for (let i = 1; i < BUILDERS; i++) await c.call("spawn", { name: `idle-${i}`, cmd: ["sleep", "100000"], restart: "temporary" });
    const count = (await c.call("status", {})).length;
    if (count !== BUILDERS) throw new Error(`expected ${BUILDERS} builders, status shows ${count}`);
    // the daemon at rest: let the spawn burst's garbage be collected before reading
    await waitFor(async () => (await c.call("status", {})).length === BUILDERS, "status to settle");
    await new Promise((settle) => setTimeout(settle, 2000));
    const daemon = memoryOf(daemonPid);

    const destroyMs: number[] = [];
    for (let i = 1; i <= DESTROYS; i++) {
      const t0 = performance.now();
      await c.call("destroy", { name: `idle-${i}`, force: true });
      destroyMs.push(performance.now() - t0);
    }
    const rawMs = await rawDestroys(repo, DESTROYS);

    console.log(`| figure | value | baseline (same run) | ratio | budget |`);
    console.log(`| --- | --- | --- | --- | --- |`);
    const dRatio = daemon.rss / bare.rss;
    console.log(`| daemon RSS with ${BUILDERS} builders | ${mb(daemon.rss)} (own ${mb(daemon.anon)}) | bare idle \`node\` ${mb(bare.rss)} (own ${mb(bare.anon)}) | ${dRatio.toFixed(2)}× | ≤ 100 MB ${daemon.rss <= 100 * 2 ** 20 ? "✓" : "✗"} |`);
    const hRatio = host.rss / bare.rss;
    console.log(`| pty host RSS, one builder on a PTY | ${mb(host.rss)} (own ${mb(host.anon)}) | bare idle \`node\` ${mb(bare.rss)} (own ${mb(bare.anon)}) | ${hRatio.toFixed(2)}× | ≤ 56 MB ${host.rss <= 56 * 2 ** 20 ? "✓" : "✗"} |`);
    const destroy = median(destroyMs);
    const raw = median(rawMs);
    console.log(`| destroy (stop agent + host, remove worktree + branch, tombstone), median of ${DESTROYS} | ${destroy.toFixed(1)} ms | \`git worktree remove --force\` + \`git branch -D\` + kill ${raw.toFixed(1)} ms | ${(destroy / raw).toFixed(2)}× | — (peer 450–490 ms; aim ≤ 245 ms) ${destroy <= 245 ? "✓" : "✗"} |`);

    for (let i = DESTROYS + 1; i < BUILDERS; i++) await c.call("destroy", { name: `idle-${i}`, force: true }).catch(() => undefined);
    await c.call("destroy", { name: "one", force: true }).catch(() => undefined);
  });
}

/** The floor of a destroy: the same git work and ending one process, nothing recorded. */
async function rawDestroys(repo: string, n: number): Promise<number[]> {
  const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "ignore" });
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(repo, ".troupe", "bench-raw", `raw-${i}`);
    git("worktree", "add", "-q", "-b", `bench-raw/${i}`, path);
    const child = spawn("sleep", ["100000"], { stdio: "ignore" });
    await new Promise((up) => child.once("spawn", up));
    const exited = new Promise((gone) => child.once("exit", gone));
    const t0 = performance.now();
    child.kill("SIGTERM");
    await exited;
    git("worktree", "remove", "--force", path);
    git("branch", "-q", "-D", `bench-raw/${i}`);
    times.push(performance.now() - t0);
  }
  return times;
}
