/**
 * Fresh install figure (DESIGN §12): `npm ci` in a fresh copy of the committed
 * tree (its `prepare` step, the TypeScript build, included), budget ≤ 20 s and no compiler. The PATH given to npm holds
 * only node, npm and sh, so a dependency that tried to compile (node-gyp needs
 * python, make and a C++ compiler) would fail the run instead of passing
 * slowly. Baseline, in the same run: `npm install` of a package with no
 * dependencies (npm's own start-up and bookkeeping).
 *
 * npm's cache is whatever the machine has (a user's second project is the
 * common case); the registry is still asked for every package's metadata
 * unless npm is configured otherwise.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUDGET_MS = 20_000;

/** node, npm and sh, and nothing else: no cc, c++, make or python. */
function bareToolsDir(base: string): string {
  const bin = join(base, "bin");
  mkdirSync(bin);
  const npmCli = realpathSync(execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim());
  symlinkSync(process.execPath, join(bin, "node"));
  symlinkSync(npmCli, join(bin, "npm"));
  symlinkSync("/bin/sh", join(bin, "sh"));
  return bin;
}

function timedNpm(args: string[], cwd: string, bin: string): number {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };
  const t0 = performance.now();
  const result = spawnSync(join(bin, "npm"), args, { cwd, env, encoding: "utf8" });
  const elapsed = performance.now() - t0;
  if (result.status !== 0) throw new Error(`npm ${args.join(" ")} failed in ${cwd} (exit ${result.status}):\n${result.stderr.slice(-2000)}`);
  return elapsed;
}

export async function run(): Promise<void> {
  console.log("\n## Fresh install (issue 2)");
  const base = realpathSync(mkdtempSync(join(tmpdir(), "troupe-bench-install-")));
  try {
    const bin = bareToolsDir(base);
    for (const tool of ["cc", "gcc", "c++", "g++", "make", "python3", "python"]) {
      if (existsSync(join(bin, tool))) throw new Error(`${tool} must not be on the install's PATH`);
    }

    const empty = join(base, "empty");
    mkdirSync(empty);
    writeFileSync(join(empty, "package.json"), JSON.stringify({ name: "empty", version: "1.0.0", private: true }));
    const floor = timedNpm(["install", "--no-audit", "--no-fund"], empty, bin);

    const project = join(base, "troupe");
    mkdirSync(project);
    // what a fresh clone holds (the install's `prepare` builds dist/ from src/)
    const tree = execFileSync("git", ["-C", ROOT, "archive", "--format=tar", "HEAD"], { maxBuffer: 256 * 2 ** 20 });
    execFileSync("tar", ["-x", "-C", project], { input: tree });
    const install = timedNpm(["ci", "--no-audit", "--no-fund"], project, bin);
    const packages = readdirSync(join(project, "node_modules")).length;
    // the one native module troupe has arrives prebuilt: no build/ directory was made
    const ptyBuild = ["@lydell/node-pty", "node-pty"].some((name) => existsSync(join(project, "node_modules", name, "build")));

    console.log(`| figure | value | baseline (same run) | ratio | budget |`);
    console.log(`| --- | --- | --- | --- | --- |`);
    console.log(
      `| fresh \`npm ci\` (${packages} top-level entries in node_modules, PATH without any compiler) | ${(install / 1000).toFixed(1)} s | \`npm install\` of an empty package ${(floor / 1000).toFixed(1)} s | ${(install / floor).toFixed(2)}× | ≤ 20 s, no compiler ${install <= BUDGET_MS && !ptyBuild ? "✓" : "✗"} |`,
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
