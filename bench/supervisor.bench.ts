/**
 * Supervisor figures (DESIGN §12), each beside a baseline measured in the same run:
 * - spawn → working (median, p95 over 20 builders) vs `git worktree add` + a
 *   node-pty spawn of the same command until its first output: one at a
 *   time, interleaved with the baseline; then 20 back to back, where each
 *   spawn also competes with the spare host the previous one started;
 * - restart after a crash (backoff 0) vs a bare node-pty respawn;
 * - supervisor heap per idle builder with 200 builders running `sleep`.
 */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createSupervisor } from "../src/index.js";
import { makeBenchRepo, median, quantile } from "./common.js";
import type { Supervisor } from "../src/supervisor/supervisor.js";
import { signalProcessTree } from "../src/shared/proc.js";

const require = createRequire(import.meta.url);
const pty = require("@lydell/node-pty") as typeof import("@lydell/node-pty");

const SPAWNS = 20;
const IDLE_BUILDERS = Number(process.env.TROUPE_BENCH_IDLE ?? 200);
const AGENT = ["node", "-e", "console.log('ready'); setInterval(() => {}, 1 << 30)"];

export async function run(): Promise<void> {
  console.log("\n## Supervisor (issue 3)");
  const repo = makeBenchRepo("troupe-bench-sup-");
  try {
    const supervisor = await createSupervisor({ workspace: repo, timings: { killTimeoutMs: 500 }, policy: { backoffInitialMs: 0, backoffJitter: 0 } });
    try {
      const { baseline, spawnTimes } = await interleavedSpawns(repo, supervisor);
      report("spawn → working, median", median(spawnTimes), median(baseline.spawn), "≤ 1.5×");
      report("spawn → working, p95", quantile(spawnTimes, 0.95), quantile(baseline.spawn, 0.95), "≤ 1.5×");
      const burstBaseline = await baselineBurst(repo);
      const burst = await supervisorBurst(supervisor);
      report("spawn → working back to back, median", median(burst), median(burstBaseline.spawn), "≤ 1.5×");
      report("spawn → working back to back, p95", quantile(burst, 0.95), quantile(burstBaseline.spawn, 0.95), "≤ 1.5×");
      const restart = await restartLatency(supervisor);
      report("restart after crash (backoff 0), median", median(restart), median(baseline.respawn), "—");
      for (const b of await supervisor.status()) await supervisor.destroy(b.name, { force: true });
      await idleHeap(supervisor);
    } finally {
      for (const b of await supervisor.status().catch(() => [])) await supervisor.destroy(b.name, { force: true }).catch(() => undefined);
      await supervisor.close();
    }
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

/**
 * One baseline spawn, then one supervisor spawn, SPAWNS times: both see the
 * same machine. Each measurement starts after a pause, so that neither pays
 * for what the previous one left running (the supervisor boots its next spare
 * host right after a spawn; a real spawn rarely follows another within 300 ms).
 */
async function interleavedSpawns(repo: string, supervisor: Supervisor): Promise<{ baseline: { spawn: number[]; respawn: number[] }; spawnTimes: number[] }> {
  const baseline = { spawn: [] as number[], respawn: [] as number[] };
  const spawnTimes: number[] = [];
  for (let i = 0; i < SPAWNS; i++) {
    await settle();
    const path = join(repo, ".troupe", "baseline", `b${i}`);
    const t0 = performance.now();
    execFileSync("git", ["worktree", "add", "-q", "-b", `baseline/b${i}`, path, "HEAD"], { cwd: repo, stdio: "ignore" });
    await firstOutput(path);
    baseline.spawn.push(performance.now() - t0);
    const t1 = performance.now();
    await firstOutput(path);
    baseline.respawn.push(performance.now() - t1);
    execFileSync("git", ["worktree", "remove", "--force", path], { cwd: repo, stdio: "ignore" });
    execFileSync("git", ["branch", "-D", `baseline/b${i}`], { cwd: repo, stdio: "ignore" });

    await settle();
    const t2 = performance.now();
    await supervisor.spawn({ name: `s${i}`, cmd: AGENT, restart: "temporary" });
    spawnTimes.push(performance.now() - t2);
  }
  for (let i = 0; i < SPAWNS; i++) await supervisor.destroy(`s${i}`, { force: true });
  return { baseline, spawnTimes };
}

const SETTLE_MS = 300;
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/** Back to back, as a lead that starts several workers at once: the baseline's 20, then the supervisor's 20. */
async function baselineBurst(repo: string): Promise<{ spawn: number[]; respawn: number[] }> {
  const spawn: number[] = [];
  const respawn: number[] = [];
  for (let i = 0; i < SPAWNS; i++) {
    const path = join(repo, ".troupe", "baseline", `b${i}`);
    const t0 = performance.now();
    execFileSync("git", ["worktree", "add", "-q", "-b", `baseline/b${i}`, path, "HEAD"], { cwd: repo, stdio: "ignore" });
    await firstOutput(path);
    spawn.push(performance.now() - t0);
    const t1 = performance.now();
    await firstOutput(path);
    respawn.push(performance.now() - t1);
    execFileSync("git", ["worktree", "remove", "--force", path], { cwd: repo, stdio: "ignore" });
    execFileSync("git", ["branch", "-D", `baseline/b${i}`], { cwd: repo, stdio: "ignore" });
  }
  return { spawn, respawn };
}

async function supervisorBurst(supervisor: Supervisor): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < SPAWNS; i++) {
    const t0 = performance.now();
    await supervisor.spawn({ name: `burst${i}`, cmd: AGENT, restart: "temporary" });
    times.push(performance.now() - t0);
  }
  for (let i = 0; i < SPAWNS; i++) await supervisor.destroy(`burst${i}`, { force: true });
  return times;
}

function firstOutput(cwd: string): Promise<void> {
  return new Promise((resolve) => {
    const child = pty.spawn(AGENT[0]!, AGENT.slice(1), { cwd, cols: 80, rows: 24 });
    const sub = child.onData(() => {
      sub.dispose();
      child.kill("SIGKILL");
      resolve();
    });
  });
}


async function restartLatency(supervisor: Supervisor): Promise<number[]> {
  const times: number[] = [];
  await supervisor.spawn({ name: "crasher", cmd: AGENT, restart: "permanent" });
  for (let i = 0; i < 10; i++) {
    const before = await supervisor.get("crasher");
    const back = new Promise<number>((resolve) => {
      const off = supervisor.subscribe((event) => {
        if (event.type === "transition" && event.name === "crasher" && event.to.startsWith("working")) {
          off();
          resolve(performance.now());
        }
      });
    });
    const t0 = performance.now();
    signalProcessTree(before.pid!, "SIGKILL");
    times.push((await back) - t0);
    // An explicit restart resets the intensity window so the next crash is restarted too.
    if (i % 2 === 1) {
      await supervisor.stop("crasher");
      await supervisor.restart("crasher");
    }
  }
  return times;
}

async function idleHeap(supervisor: Supervisor): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log("heap per idle builder: run with --expose-gc to measure");
    return;
  }
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < IDLE_BUILDERS; i++) await supervisor.spawn({ name: `idle${i}`, cmd: ["sleep", "3600"], restart: "temporary" });
  gc();
  const after = process.memoryUsage().heapUsed;
  const perBuilder = (after - before) / IDLE_BUILDERS;
  console.log(`heap per idle builder (${IDLE_BUILDERS} builders): ${(perBuilder / 1024).toFixed(1)} KB   budget ≤ 100 KB   ${perBuilder <= 100 * 1024 ? "OK" : "OVER"}`);
  for (let i = 0; i < IDLE_BUILDERS; i++) await supervisor.destroy(`idle${i}`, { force: true });
}

function report(what: string, value: number, baseline: number, budget: string): void {
  console.log(`${what}: ${value.toFixed(1)} ms   baseline ${baseline.toFixed(1)} ms   ratio ${(value / baseline).toFixed(2)}×   budget ${budget}`);
}
