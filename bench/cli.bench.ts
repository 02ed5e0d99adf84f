/**
 * CLI figure (DESIGN §12): wall time of `troupe status --json` with 50
 * builders, beside `node -e 0` (the floor: a Node process that does nothing)
 * measured in the same run, interleaved so both see the same machine load.
 * Budget: ≤ 2× the floor.
 *
 * Runs the built binary (bin/troupe.js → dist/); `npm run bench` builds first.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { BIN, median, quantile, withBenchDaemon } from "./common.js";

const BUILDERS = Number(process.env.TROUPE_BENCH_CLI_BUILDERS ?? 50);
const RUNS = Number(process.env.TROUPE_BENCH_CLI_RUNS ?? 20);

export async function run(): Promise<void> {
  console.log("\n## CLI (issue 6)");
  await withBenchDaemon("troupe-bench-cli-", async ({ repo, env, client: c }) => {
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
  });
}

function p90(values: number[]): number {
  return quantile(values, 0.9);
}
