/**
 * Baseline libraries of the benchmarks (better-sqlite3, which compiles from
 * source here) live in bench/package.json, never in the main package: a
 * fresh `npm install troupe` must need no compiler. Installed on first use.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const benchDir = dirname(fileURLToPath(import.meta.url));
const benchRequire = createRequire(join(benchDir, "package.json"));

function resolvable(name: string): boolean {
  try {
    benchRequire.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Installs bench/package.json's dependencies when one is missing; false when that fails. */
export function ensureBenchDeps(names: string[] = ["better-sqlite3"]): boolean {
  if (names.every(resolvable)) return true;
  console.error(`bench: installing ${names.join(", ")} into bench/node_modules (first run only; better-sqlite3 may compile for a minute or two)…`);
  try {
    execFileSync("npm", ["install", "--prefix", benchDir, "--no-audit", "--no-fund"], { stdio: ["ignore", "ignore", "inherit"] });
  } catch (error) {
    console.error(`bench: install failed (${(error as Error).message}); baselines that need it are skipped.`);
    return false;
  }
  return names.every(resolvable);
}

/** Loads a bench dependency, or null when it is not installed. */
export function benchModule<T>(name: string): T | null {
  try {
    return benchRequire(name) as T;
  } catch {
    return null;
  }
}
