/**
 * The REPL is as thin as the CLI (DESIGN §2): from `troupe repl`'s command
 * module, the import graph reaches node builtins, the thin client's folders
 * (src/cli, src/repl, src/client, src/term) and the pure modules the CLI may load, and never sql.js, xstate, node-pty, pino or
 * execa. (The run-time side is in repl.test.ts: the REPL under the loader
 * hook that refuses them.)
 */
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../e2e/harness.js";
import { importGraph } from "../helpers/import-graph.js";

/** The thin client's own folders, as in test/cli/thin.test.ts. */
const THIN = ["src/cli/", "src/repl/", "src/client/", "src/term/"];
/** Pure modules outside them (node builtins only), a subset of test/cli/thin.test.ts's list. */
const ALLOWED_OUTSIDE = ["src/daemon/protocol.ts", "src/daemon/workspace.ts", "src/daemon/launch.ts", "src/shared/errors.ts", "src/shared/proc.ts", "src/shared/vocabulary.ts", "src/shared/layout.ts", "src/shared/lines.ts", "src/actors/pty-host/protocol.ts"];

describe("the REPL's import graph", () => {
  it("reaches only node builtins, shell-quote, the thin client's folders and the CLI's pure modules", () => {
    const { files: seen, packages } = importGraph([join(ROOT, "src", "cli", "commands", "repl.ts")]);
    const files = [...seen].map((file) => relative(ROOT, file));
    expect(files).toContain("src/repl/index.ts");
    expect(files.filter((file) => !THIN.some((folder) => file.startsWith(folder)) && !ALLOWED_OUTSIDE.includes(file))).toEqual([]);
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    expect([...packages].filter((name) => !builtins.has(name) && name !== "shell-quote")).toEqual([]);
  });
});
