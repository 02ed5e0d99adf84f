/**
 * The CLI never loads sql.js, xstate, node-pty, pino or execa (DESIGN §2,
 * prior art: a CLI that loads a native module breaks on a Node mismatch).
 * Proved twice: at run time, with a loader hook that throws on those modules
 * while real commands run against a real daemon; and statically, over the
 * whole import graph of src/cli and of the `connect()` client (src/client).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importGraph, importsOf } from "../helpers/import-graph.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, ROOT, TestWorkspace, agent, cliEnv } from "../e2e/harness.js";

const HOOK = join(ROOT, "test", "cli", "fixtures", "block-heavy.mjs");
const node = process.execPath;
let ws: TestWorkspace;

beforeAll(async () => {
  ws = new TestWorkspace("troupe-thin-");
  await ws.daemonPid(); // started without the hook: the daemon may load what it needs
  await ws.ok(["spawn", "target", "--", node, agent("cli-quiet.mjs")]);
});
afterAll(async () => {
  await ws.close();
});

describe("at run time, under a loader hook that refuses heavy modules", () => {
  let n = 0;
  const hooked = async (args: string[]) => {
    const log = join(tmpdir(), `troupe-thin-${process.pid}-${n++}.log`);
    try {
      const result = await ws.run(args, { nodeArgs: ["--import", HOOK], env: { TROUPE_BLOCK_LOG: log } });
      const loaded = existsSync(log) ? readFileSync(log, "utf8") : "";
      return { ...result, loaded };
    } finally {
      rmSync(log, { force: true });
    }
  };

  it("the hook works: it does block a heavy import", async () => {
    const { execFileSync } = await import("node:child_process");
    expect(() => execFileSync(node, ["--import", HOOK, "-e", "await import('xstate')", "--input-type=module"], { cwd: ROOT, stdio: "pipe" })).toThrow(/must not load xstate/);
    expect(() => execFileSync(node, ["--import", HOOK, "-e", "require('pino')"], { cwd: ROOT, stdio: "pipe" })).toThrow(/must not load pino/);
  });

  const commands: Array<[string, string[]]> = [
    ["status", ["status", "--json"]],
    ["status (tree)", ["status", "--all"]],
    ["spawn", ["spawn", "hooked", "--json", "--", node, agent("cli-quiet.mjs")]],
    ["send", ["send", "target", "hello", "--json"]],
    ["mail", ["mail", "target", "--json"]],
    ["logs", ["logs", "target", "--json"]],
    ["stop", ["stop", "hooked", "--json"]],
    ["destroy", ["destroy", "hooked", "--force", "--json"]],
    ["daemon status", ["daemon", "status", "--json"]],
    ["chart", ["chart", "builder", "--format", "mermaid"]],
    ["--help", ["spawn", "--help"]],
  ];
  it.each(commands)("%s runs without loading any of them", async (_what, args) => {
    const result = await hooked(args);
    expect(result.loaded).not.toContain("BLOCKED");
    expect(result.stderr).not.toContain("must not load");
    expect(result.code, result.stderr).toBe(0);
    expect(result.loaded).toContain("/dist/cli/main.js"); // the hook saw the CLI load
    // and it loaded nothing from node_modules but shell-quote
    const packages = result.loaded.split("\n").filter((url) => url.includes("/node_modules/"));
    expect(packages.filter((url) => !url.includes("/node_modules/shell-quote/"))).toEqual([]);
  });
});

describe("troupe viz (a server that runs until stopped) under the same hook", () => {
  it("serves its page and stops on SIGTERM without loading any of them", async () => {
    const log = join(tmpdir(), `troupe-thin-viz-${process.pid}.log`);
    const child = spawn(node, ["--import", HOOK, BIN, "viz", "--no-open", "--json"], {
      cwd: ws.repo,
      env: cliEnv({ TROUPE_BLOCK_LOG: log }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let exit: { code: number | null; signal: string | null } | null = null;
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("exit", (code, signal) => (exit = { code, signal }));
    try {
      const started = await waitFor(() => {
        if (exit) throw new Error(`troupe viz exited early (${JSON.stringify(exit)}): ${out}`);
        const line = out.split("\n").find((l) => l.startsWith("{"));
        return line ? (JSON.parse(line) as { url: string; pid: number }) : null;
      }, "troupe viz to print its URL", 30_000);
      expect(started.pid).toBe(child.pid);
      const page = await fetch(started.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<svg");
      child.kill("SIGTERM");
      expect(await waitFor(() => exit, "troupe viz to exit", 15_000)).toEqual({ code: 0, signal: null });
      const loaded = existsSync(log) ? readFileSync(log, "utf8") : "";
      expect(loaded).not.toContain("BLOCKED");
      expect(loaded).toContain("/dist/cli/main.js");
      // from node_modules: Graphviz's WASM build only (it lays out the chart)
      const packages = loaded.split("\n").filter((url) => url.includes("/node_modules/"));
      expect(packages.filter((url) => !url.includes("/node_modules/@viz-js/viz/") && !url.includes("/node_modules/shell-quote/"))).toEqual([]);
    } finally {
      if (!exit) child.kill("SIGKILL");
      rmSync(log, { force: true });
    }
  });
});

describe("statically, over the import graph of src/cli", () => {
  /** The thin client's own folders: the CLI, the REPL (it runs in the CLI process), the daemon's client library, terminal output. */
  const THIN = ["src/cli/", "src/repl/", "src/client/", "src/term/"];
  /** Modules outside them that the CLI may load: pure, node builtins only. */
  const ALLOWED_OUTSIDE = [
    "src/daemon/protocol.ts",
    "src/daemon/workspace.ts",
    "src/daemon/launch.ts",
    "src/shared/errors.ts",
    "src/shared/proc.ts",
    "src/shared/vocabulary.ts",
    "src/shared/layout.ts",
    "src/shared/lines.ts",
    "src/shared/duration.ts",
    "src/actors/pty-host/protocol.ts",
    "src/viz/export.ts",
    "src/viz/server.ts",
    "src/viz/page.ts",
  ];
  // @viz-js/viz is Graphviz compiled to WASM (no native code), imported only by `troupe chart --format svg` and `troupe viz`.
  const ALLOWED_PACKAGES = ["shell-quote", "@viz-js/viz"];

  it("reaches only node builtins, shell-quote and pure modules", () => {
    const { files: seen, packages } = importGraph([join(ROOT, "src", "cli", "main.ts"), join(ROOT, "src", "cli", "demo-agent.ts"), join(ROOT, "src", "client", "connect.ts")]);
    const outside = [...seen].map((file) => relative(ROOT, file)).filter((file) => !THIN.some((folder) => file.startsWith(folder)));
    expect(outside.filter((file) => !ALLOWED_OUTSIDE.includes(file))).toEqual([]);
    const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
    expect([...packages].filter((name) => !builtins.has(name) && !ALLOWED_PACKAGES.includes(name))).toEqual([]);
    // the command modules are all reached (lazily)
    expect([...seen].filter((file) => file.includes("/src/cli/commands/")).length).toBeGreaterThanOrEqual(12);
  });

  it("the allowed modules outside src/cli import only node builtins and each other", () => {
    for (const file of ALLOWED_OUTSIDE) {
      for (const specifier of importsOf(join(ROOT, file))) {
        if (specifier.startsWith(".")) expect(ALLOWED_OUTSIDE, `${file} imports ${specifier}`).toContain(relative(ROOT, resolve(dirname(join(ROOT, file)), specifier.replace(/\.js$/, ".ts"))));
        else if (!ALLOWED_PACKAGES.includes(specifier)) expect(specifier, `${file} imports ${specifier}`).toMatch(/^node:/);
      }
    }
  });
});
