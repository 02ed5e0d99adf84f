/**
 * `troupe repl` driven as a person would: the real binary in a real PTY
 * (node-pty), against a real daemon in a temp git repository, with real
 * builders spawned and stopped by the CLI while the REPL watches.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/client/connect.js";
import { isProcessAlive } from "../../src/shared/proc.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, ROOT, TestWorkspace, agent, cliEnv } from "../e2e/harness.js";

const pty = createRequire(import.meta.url)("@lydell/node-pty") as typeof import("@lydell/node-pty");
const node = process.execPath;
const PROMPT = "troupe> ";
const HOOK = join(ROOT, "test", "cli", "fixtures", "block-heavy.mjs");

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;
// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/;

/** One `troupe repl` under a PTY; everything it printed, raw and without escapes. */
class ReplSession {
  readonly term: import("@lydell/node-pty").IPty;
  readonly exited: Promise<{ exitCode: number; signal?: number }>;
  private output = "";

  constructor(options: { env?: Record<string, string | undefined>; nodeArgs?: string[] } = {}) {
    this.term = pty.spawn(node, [...(options.nodeArgs ?? []), BIN, "repl"], { cwd: ws.repo, env: cliEnv(options.env) as Record<string, string>, cols: 160, rows: 40, name: "xterm" });
    this.term.onData((data) => {
      this.output += data;
      for (const match of data.matchAll(/started the daemon \(pid (\d+)\)/g)) ws.track(Number(match[1])); // should not happen: one runs
    });
    this.exited = new Promise((resolve) => this.term.onExit(resolve));
    sessions.add(this);
  }

  get raw(): string {
    return this.output;
  }

  text(): string {
    return this.output.replace(ANSI, "").replace(/\r/g, "");
  }

  /** Waits for `pattern` in what was printed since `from` (a length of text()). */
  async see(pattern: string | RegExp, from: number, what: string): Promise<string> {
    return waitFor(() => {
      const seen = this.text().slice(from);
      return (typeof pattern === "string" ? seen.includes(pattern) : pattern.test(seen)) ? seen : null;
    }, what);
  }

  async ready(): Promise<void> {
    await this.see(PROMPT, 0, "the prompt");
  }

  /** Types `line` and Enter; resolves to the answer: what came between the line and the next prompt. */
  async run(line: string): Promise<string> {
    const from = this.text().length;
    this.term.write(`${line}\r`);
    return waitFor(() => {
      const seen = this.text().slice(from);
      const echo = seen.indexOf("\n");
      if (echo === -1) return null;
      const end = seen.indexOf(PROMPT, echo);
      return end === -1 ? null : seen.slice(echo + 1, end);
    }, `the answer to ${JSON.stringify(line)}`);
  }

  async exit(input: string): Promise<{ exitCode: number; signal?: number }> {
    this.term.write(input);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the repl did not exit; it printed:\n${this.text()}`)), 20_000)));
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    try {
      process.kill(this.term.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

let ws: TestWorkspace;
const sessions = new Set<ReplSession>();
let alphaPid: number;

beforeAll(async () => {
  ws = new TestWorkspace("troupe-repl-");
  await ws.daemonPid();
  await ws.ok(["spawn", "alpha", "--", node, agent("fake-agent.mjs"), "--print", "hello from alpha", "--hang"]);
  alphaPid = (await ws.ok<Array<{ pid: number }>>(["status", "--json"]))[0]!.pid;
});
afterAll(async () => {
  for (const session of sessions) session.kill();
  await ws?.close();
});

describe("troupe repl", () => {
  let s: ReplSession;
  beforeAll(async () => {
    s = new ReplSession();
    await s.ready();
  });

  it("shows the tree with states, the status array, a builder and its transitions", async () => {
    expect(s.text()).toContain(`workspace ${ws.repo}`);
    expect(await s.run(".tree")).toMatch(/^NAME\s+STATE[\s\S]*^alpha\s+working\.(active|stalled)\s+\d+/m);
    expect(await s.run("(await troupe.status()).map((b) => [b.name, b.state])")).toContain("[ [ 'alpha', 'working' ] ]");
    const array = await s.run("await troupe.status()");
    expect(array.trimStart()).toMatch(/^\[\s*\{\s*name: 'alpha'/);
    expect(await s.run('builder("alpha")')).toMatch(/name: 'alpha',[\s\S]*state: 'working'/);
    const history = await s.run(".history alpha");
    expect(history).toMatch(/^TIME\s+TRANSITION\s+EVENT/m);
    expect(history).toMatch(/\(none\) → booting\.provisioning\s+SPAWN/);
    expect(history).toMatch(/booting\.starting → working\.active\s+STARTED/);
    expect(await s.run('history("alpha")')).toMatch(/booting\.starting → working\.active\s+STARTED/);
    expect(s.raw).toMatch(SGR); // a TTY without NO_COLOR: colours
  });

  it("shows a builder's screen as text, from the dot-command and the helper", async () => {
    expect(await s.run(".screen alpha")).toContain("hello from alpha");
    expect(await s.run('screen("alpha")')).toContain("hello from alpha");
  });

  it("prints a daemon error as `error CODE: message` and keeps answering", async () => {
    const dot = await s.run(".builder nosuch");
    expect(dot.trim()).toMatch(/^error NOT_FOUND: No builder named "nosuch"/);
    const awaited = await s.run('await troupe.get("nosuch")');
    expect(awaited.trim()).toMatch(/^error NOT_FOUND: No builder named "nosuch"/);
    for (const answer of [dot, awaited]) {
      expect(answer).not.toContain("Uncaught");
      expect(answer).not.toMatch(/^\s+at /m); // no stack trace
    }
    expect(await s.run(".tree")).toMatch(/^alpha\s+working/m);
    expect(await s.run("6 * 7")).toContain("42");
  });

  it("mail and send work from the helpers", async () => {
    expect(await s.run('send("alpha", "note-from-repl")')).toMatch(/sent \S+ operator → alpha status/);
    expect(await s.run(".mail alpha")).toContain("note-from-repl");
  });

  it("completes builder names with Tab", async () => {
    const from = s.text().length;
    s.term.write(".history alp\t");
    await s.see(".history alpha", from, "the completed name");
    s.term.write("\r");
    await s.see(/booting\.starting → working\.active\s+STARTED[\s\S]*troupe> /, from, "the history of the completed name");
    const call = s.text().length;
    s.term.write('builder("al\t');
    await s.see('builder("alpha', call, "the completed argument");
    expect(await s.run('")')).toMatch(/name: 'alpha'/);
  });

  it(".watch prints transitions and mail that happen after it is turned on", async () => {
    expect(await s.run(".watch")).toContain("watching every builder");
    const from = s.text().length;
    await ws.ok(["spawn", "beta", "--", node, agent("fake-agent.mjs"), "--hang"]);
    await s.see(/beta\s+\(none\) → booting\.provisioning\s+SPAWN/, from, "beta's spawn");
    await s.see(/beta\s+booting\.starting → working\.active\s+STARTED/, from, "beta's start");
    await ws.ok(["stop", "beta"]);
    await s.see(/beta\s+working\.\w+ → completed\S*\s+STOPPED/, from, "beta's stop");
    await ws.ok(["send", "alpha", "watch-this-mail"]);
    await s.see(/mail operator → alpha\s+status\s+watch-this-mail/, from, "the mail");
    // the prompt was drawn again under what was printed, and still answers
    expect(s.text().slice(from).trimEnd().endsWith(PROMPT.trimEnd())).toBe(true);
    expect(await s.run(".unwatch")).toContain("stopped watching");
    expect(await s.run("1 + 1")).toContain("2");
  });

  it(".exit leaves with 0, the builder keeps working, and the REPL history is written", async () => {
    const exit = await s.exit(".exit\r");
    expect(exit.exitCode).toBe(0);
    const alpha = (await ws.ok<Array<{ name: string; state: string; pid: number }>>(["status", "--json"])).find((b) => b.name === "alpha")!;
    expect(alpha).toMatchObject({ state: "working", pid: alphaPid });
    expect(isProcessAlive(alphaPid)).toBe(true);
    const history = readFileSync(join(ws.repo, ".troupe", "repl_history"), "utf8");
    for (const line of [".tree", ".builder nosuch", ".watch", ".exit"]) expect(history.split("\n")).toContain(line);
  });
});

describe("troupe repl, other ways in and out", () => {
  it("Ctrl-D leaves with 0; NO_COLOR means no colours", async () => {
    const s = new ReplSession({ env: { NO_COLOR: "1" } });
    await s.ready();
    expect(await s.run(".tree")).toMatch(/^alpha\s+working/m);
    expect(await s.run(".history alpha")).toContain("STARTED");
    expect(s.raw).not.toMatch(SGR);
    expect((await s.exit("\x04")).exitCode).toBe(0);
  });

  it("loads none of the heavy modules (under the loader hook that refuses them)", async () => {
    const log = join(tmpdir(), `troupe-repl-hook-${process.pid}.log`);
    try {
      const s = new ReplSession({ nodeArgs: ["--import", HOOK], env: { TROUPE_BLOCK_LOG: log } });
      await s.ready();
      expect(await s.run(".tree")).toMatch(/^alpha\s+working/m);
      expect(await s.run(".watch alpha")).toContain("watching alpha");
      expect((await s.exit(".exit\r")).exitCode).toBe(0);
      const loaded = existsSync(log) ? readFileSync(log, "utf8") : "";
      expect(loaded).toContain("/dist/repl/index.js");
      expect(loaded).not.toContain("BLOCKED");
      expect(loaded.split("\n").filter((url) => url.includes("/node_modules/") && !url.includes("/node_modules/shell-quote/"))).toEqual([]);
    } finally {
      rmSync(log, { force: true });
    }
  });

  it("reads commands from a pipe, answering each in turn", async () => {
    const result = await ws.run(["repl"], { input: ".tree\n.builder nosuch\n(await troupe.status()).length > 0\n" });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^troupe> NAME\s+STATE[\s\S]*^alpha\s+working/m);
    expect(result.stdout).toMatch(/troupe> error NOT_FOUND: No builder named "nosuch"[\s\S]*troupe> true/);
  });

  it("--json is a usage error (exit 2); --help describes the REPL", async () => {
    const json = await ws.run(["repl", "--json"]);
    expect(json.code).toBe(2);
    expect(json.stderr).toContain("--json does not apply");
    const help = await ws.run(["repl", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: troupe repl/);
    for (const command of [".tree", ".builder <name>", ".history <name>", ".watch", "repl_history"]) expect(help.stdout).toContain(command);
  });

  it("connect().history(name) answers the builder's transitions", async () => {
    const client = await connect({ workspace: ws.repo, autostart: false });
    try {
      const history = await client.history("alpha");
      expect(history.map((h) => h.to)).toEqual(expect.arrayContaining(["booting.provisioning", "booting.starting", "working.active"]));
      expect(history[0]).toMatchObject({ from: "(none)", event: "SPAWN" });
      expect(typeof history[0]!.at).toBe("string");
    } finally {
      await client.close();
    }
  });
});
