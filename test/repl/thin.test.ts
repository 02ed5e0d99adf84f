/**
 * The REPL is as thin as the CLI (DESIGN §2): from `troupe repl`'s command
 * module, the import graph reaches node builtins, src/cli, src/repl and the
 * pure modules the CLI may load, and never sql.js, xstate, node-pty, pino or
 * execa. (The run-time side is in repl.test.ts: the REPL under the loader
 * hook that refuses them.)
 */
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../e2e/harness.js";

/** The same list as test/cli/thin.test.ts: pure modules, node builtins only. */
const ALLOWED_OUTSIDE = ["src/daemon/protocol.ts", "src/daemon/workspace.ts", "src/shared/errors.ts", "src/shared/proc.ts", "src/actors/pty-host/protocol.ts"];

function importsOf(file: string): string[] {
  const source = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  // static imports and re-exports (type-only ones are erased by tsc)
  for (const match of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\sfrom\s+["']([^"']+)["']/gm)) if (!match[2]) found.push(match[3]!);
  for (const match of source.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) found.push(match[1]!);
  for (const match of source.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!);
  return found;
}

describe("the REPL's import graph", () => {
  it("reaches only node builtins, shell-quote, src/cli, src/repl and the CLI's pure modules", () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const queue = [join(ROOT, "src", "cli", "commands", "repl.ts")];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const specifier of importsOf(file)) {
        if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
        else packages.add(specifier);
      }
    }
    const files = [...seen].map((file) => relative(ROOT, file));
    expect(files).toContain("src/repl/index.ts");
    expect(files.filter((file) => !file.startsWith("src/cli/") && !file.startsWith("src/repl/") && !ALLOWED_OUTSIDE.includes(file))).toEqual([]);
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    expect([...packages].filter((name) => !builtins.has(name) && name !== "shell-quote")).toEqual([]);
  });
});
