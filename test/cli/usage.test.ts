/**
 * The CLI's surface without a daemon: --help of every command, usage errors
 * (exit 2) and `init`.
 * None of these may start a daemon.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { git } from "../helpers/workspace.js";
import { ROOT, TestWorkspace } from "../e2e/harness.js";

const COMMANDS = ["init", "daemon", "spawn", "status", "send", "mail", "attach", "logs", "stop", "restart", "destroy", "adopt", "doctor", "gc", "demo", "repl", "viz", "chart"];

let ws: TestWorkspace;
beforeAll(() => {
  ws = new TestWorkspace("troupe-usage-");
});
afterAll(async () => {
  await ws.close();
});

describe.concurrent("troupe --help", () => {
  it("lists every command", async () => {
    const result = await ws.run(["--help"]);
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command}`);
  });

  it("prints the usage and exits 2 without a command", async () => {
    const result = await ws.run([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Usage: troupe <command>");
  });

  it("prints the version", async () => {
    const result = await ws.run(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
  });

  it.each(COMMANDS)("troupe %s --help prints its usage (exit 0)", async (command) => {
    const result = await ws.run([command, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: troupe /);
    expect(result.stdout).toContain(command);
    const viaHelp = await ws.run(["help", command]);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(result.stdout);
  });
});

describe.concurrent("usage errors exit 2", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["an unknown command", ["frobnicate"], /unknown command "frobnicate"/],
    ["an unknown flag", ["status", "--bogus"], /unknown option '--bogus'/i],
    ["spawn without a name", ["spawn"], /missing <name>/],
    ["spawn without a command", ["spawn", "x"], /missing the agent/],
    ["spawn with an empty command after --", ["spawn", "x", "--"], /missing <command>/],
    ["spawn with two agents", ["spawn", "x", "--agent", "claude", "--", "bash"], /one way/],
    ["a bad --pty", ["spawn", "x", "--pty", "maybe", "--", "bash"], /--pty must be one of auto, on, off/],
    ["a bad --restart", ["spawn", "x", "--restart", "always", "--", "bash"], /--restart must be one of/],
    ["an invalid name", ["spawn", "Bad Name", "--", "bash"], /invalid name/],
    ["a flag without its value", ["spawn", "x", "--task"], /argument missing/i],
    ["a --cmd that needs a shell", ["spawn", "x", "--cmd", "ls | wc -l"], /needs a shell, and troupe runs no shell; use --shell/],
    ["an empty --shell", ["spawn", "x", "--shell", "  "], /--shell is empty/],
    ["--shell with a command after --", ["spawn", "x", "--shell", "ls | wc -l", "--", "bash"], /one way/],
    ["send without a body", ["send", "lead"], /missing <body>/],
    ["a bad --priority", ["send", "lead", "hi", "--priority", "asap"], /--priority must be one of/],
    ["mail with two names", ["mail", "a", "b"], /unexpected argument "b"/],
    ["attach without a name", ["attach"], /missing <name>/],
    ["logs without a name", ["logs"], /missing <name>/],
    ["stop without a name", ["stop"], /missing <name>/],
    ["restart with an extra argument", ["restart", "a", "b"], /unexpected argument/],
    ["destroy with a bad flag", ["destroy", "a", "--fast"], /unknown option/i],
    ["doctor with an argument", ["doctor", "now"], /unexpected argument/],
    ["gc with a bad age", ["gc", "--older-than", "soon"], /--older-than "soon"/],
    ["gc with --fix", ["gc", "--fix"], /unknown option/i],
    ["daemon without an action", ["daemon"], /missing <start\|stop\|status>/],
    ["daemon with an unknown action", ["daemon", "reload"], /unknown daemon action/],
    ["status with an argument", ["status", "x"], /unexpected argument/],
  ];
  it.each(cases)("%s", async (_what, args, message) => {
    const result = await ws.run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe("");
  });

  it("reports a usage error as JSON with --json", async () => {
    const result = await ws.run(["spawn", "--json"]);
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: "USAGE", message: "missing <name>", details: {} } });
  });
});

describe("none of the above", () => {
  it("started a daemon", () => {
    expect(existsSync(join(ws.repo, ".troupe", "run", "daemon.sock"))).toBe(false);
    expect(existsSync(join(ws.repo, ".troupe", "logs", "daemon.log"))).toBe(false);
  });
});

describe("troupe init", () => {
  it("creates .troupe/ owner-only and excludes it from git, idempotently", async () => {
    const first = await ws.ok<{ workspace: string; created: boolean; excludeAdded: boolean; exclude: string }>(["init", "--json"]);
    expect(first.workspace).toBe(ws.repo);
    expect(first.excludeAdded).toBe(true);
    expect(statSync(join(ws.repo, ".troupe")).mode & 0o777).toBe(0o700);
    const second = await ws.ok<{ created: boolean; excludeAdded: boolean }>(["init", "--json"]);
    expect(second).toMatchObject({ created: false, excludeAdded: false });
    const exclude = readFileSync(join(ws.repo, ".git", "info", "exclude"), "utf8");
    expect(exclude.split("\n").filter((line) => line === "/.troupe/")).toHaveLength(1);
    expect(git(ws.repo, "status", "--porcelain")).toBe("");
    const human = await ws.ok(["init"]);
    expect(human).toContain("already initialised");
  });

  it("finds the main working tree from a subdirectory", async () => {
    const sub = join(ws.repo, "src", "deep");
    await import("node:fs").then((fs) => fs.mkdirSync(sub, { recursive: true }));
    const result = await ws.ok<{ workspace: string }>(["init", "--json"], { cwd: sub });
    expect(result.workspace).toBe(ws.repo);
  });

  it("fails outside a git repository (exit 1)", async () => {
    const result = await ws.run(["init"], { cwd: "/" });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("not inside a git repository");
  });
});
