/**
 * CLI figure (DESIGN §12): wall time of `troupe status --json` with 50
 * builders, beside `node -e 0` (the floor: a Node process that does nothing)
 * measured in the same run, interleaved so both see the same machine load.
 * Budget: ≤ 2× the floor.
 *
 * Runs the built binary (bin/troupe.js → dist/); `npm run bench` builds first.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DaemonClient } from "../src/cli/client.js";
import { isProcessAlive, signalProcessTree } from "../src/shared/proc.js";
import { cleanupWorkspace } from "../test/helpers/workspace.js";
import { makeBenchRepo, median, quantile } from "./common.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "bin", "troupe.js");
const BUILDERS = Number(process.env.TROUPE_BENCH_CLI_BUILDERS ?? 50);
const RUNS = Number(process.env.TROUPE_BENCH_CLI_RUNS ?? 20);

export async function run(): Promise<void> {
  console.log("\n## CLI (issue 6)");
  const repo = makeBenchRepo("troupe-bench-cli-");
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("TROUPE_") && key !== "TROUPE_LOG_LEVEL") delete env[key];
  env.TROUPE_LOG_LEVEL ??= "warn";
  let daemonPid: number | null = null;
  let client: DaemonClient | null = null;
  try {
    const started = JSON.parse(execFileSync(process.execPath, [BIN, "daemon", "start", "--json"], { cwd: repo, env, encoding: "utf8" })) as { pid: number; socket: string };
    daemonPid = started.pid;
    client = await DaemonClient.connect(started.socket);
    await client.handshake();
    const c = client;
    for (let i = 0; i < BUILDERS; i++) await c.call("spawn", { name: `idle-${i}`, cmd: ["sleep", "100000"], restart: "temporary" });
    const count = (JSON.parse(execFileSync(process.execPath, [BIN, "status", "--json"], { cwd: repo, env, encoding: "utf8" })) as unknown[]).length;
    if (count !== BUILDERS) throw new Error(`expected ${BUILDERS} builders, status shows ${count}`);

    const time = (args: string[]): number => {
      const t0 = performance.now();
      const result = spawnSync(process.execPath, args, { cwd: repo, env, stdio: ["ignore", "ignore", "inherit"] });
      const elapsed = performance.now() - t0;
      if (result.status !== 0) throw new Error(`node ${args.join(" ")} exited ${result.status}`);
      return elapsed;
    };
    const floor: number[] = [];
    const status: number[] = [];
    for (let i = 0; i < 3; i++) {
      time(["-e", "0"]);
      time([BIN, "status", "--json"]);
    }
    for (let i = 0; i < RUNS; i++) {
      floor.push(time(["-e", "0"]));
      status.push(time([BIN, "status", "--json"]));
    }
    const figure = median(status);
    const baseline = median(floor);
    const ratio = figure / baseline;
    console.log(`| figure | value | baseline (same run) | ratio | budget |`);
    console.log(`| --- | --- | --- | --- | --- |`);
    console.log(`| \`troupe status --json\`, ${BUILDERS} builders, median of ${RUNS} | ${figure.toFixed(1)} ms | \`node -e 0\` ${baseline.toFixed(1)} ms | ${ratio.toFixed(2)}× | ≤ 2× ${ratio <= 2 ? "✓" : "✗"} |`);
    console.log(`(p90: status ${p90(status).toFixed(1)} ms, node -e 0 ${p90(floor).toFixed(1)} ms)`);

    for (let i = 0; i < BUILDERS; i++) await c.call("destroy", { name: `idle-${i}`, force: true }).catch(() => undefined);
  } finally {
    client?.close();
    if (daemonPid !== null) {
      spawnSync(process.execPath, [BIN, "daemon", "stop"], { cwd: repo, env, stdio: "ignore" });
      if (isProcessAlive(daemonPid)) signalProcessTree(daemonPid, "SIGKILL");
    }
    cleanupWorkspace(repo); // anything a failed run left (agents, pty hosts), then the repository
  }
}

function p90(values: number[]): number {
  return quantile(values, 0.9);
}
