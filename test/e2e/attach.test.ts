/**
 * `troupe attach` driven through a real PTY (the CLI itself runs under
 * node-pty, as it would in a person's terminal): the scrollback is replayed,
 * typed input reaches the agent, its output comes back, a resize reaches the
 * agent, and Ctrl-] detaches while the agent keeps running.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, TestWorkspace, agent, cliEnv } from "./harness.js";

const pty = createRequire(import.meta.url)("@lydell/node-pty") as typeof import("@lydell/node-pty");
const node = process.execPath;
let ws: TestWorkspace;

beforeAll(async () => {
  ws = new TestWorkspace("troupe-attach-");
  await ws.daemonPid();
  await ws.ok(["spawn", "echo", "--", node, agent("cli-echo.mjs")]);
});
afterAll(async () => {
  await ws.close();
});

function attach(name: string) {
  const term = pty.spawn(node, [BIN, "attach", name], { cwd: ws.repo, env: cliEnv() as Record<string, string>, cols: 100, rows: 30, name: "xterm" });
  let output = "";
  term.onData((data) => (output += data));
  const exited = new Promise<{ exitCode: number; signal?: number }>((resolve) => term.onExit(resolve));
  return { term, exited, output: () => output };
}

describe("troupe attach", () => {
  it("replays, forwards input and resizes, and detaches on Ctrl-] leaving the agent running", async () => {
    const before = (await ws.ok<Array<{ name: string; pid: number; state: string }>>(["status", "--json"]))[0]!;
    const session = attach("echo");
    try {
      await waitFor(() => session.output().includes("Detach with Ctrl-]"), "the attach banner");
      await waitFor(() => session.output().includes("ready echo"), "the scrollback replay");
      session.term.write("hello-attach\r");
      await waitFor(() => session.output().includes("got: hello-attach"), "the agent's answer to typed input");
      session.term.resize(120, 40);
      await waitFor(() => session.output().includes("size 120x40"), "the resize to reach the agent");
      session.term.write("\x1d");
      const exit = await session.exited;
      expect(exit.exitCode).toBe(0);
      expect(session.output()).toContain("detached from echo");
    } finally {
      session.term.kill("SIGKILL");
    }
    const after = (await ws.ok<Array<{ name: string; pid: number; state: string }>>(["status", "--json"]))[0]!;
    expect(after).toMatchObject({ name: "echo", state: "working", pid: before.pid });
    expect(isProcessAlive(before.pid)).toBe(true);
  });

  it("a second attach replays what the first one saw", async () => {
    const session = attach("echo");
    try {
      await waitFor(() => session.output().includes("got: hello-attach"), "the replay of the earlier exchange");
      session.term.write("\x1d");
      expect((await session.exited).exitCode).toBe(0);
    } finally {
      session.term.kill("SIGKILL");
    }
  });

  it("status uses colours on a TTY, and none with NO_COLOR", async () => {
    const run = (env: Record<string, string | undefined>) =>
      new Promise<string>((resolve) => {
        const term = pty.spawn(node, [BIN, "status"], { cwd: ws.repo, env: cliEnv(env) as Record<string, string>, cols: 120, rows: 30 });
        let output = "";
        term.onData((data) => (output += data));
        term.onExit(() => resolve(output));
      });
    const coloured = await run({});
    expect(coloured).toMatch(/\u001b\[32mworking\.active\u001b\[39m/);
    const plain = await run({ NO_COLOR: "1" });
    expect(plain).toContain("working.active");
    expect(plain).not.toContain("\u001b[");
  });

  it("attach to an unknown builder fails (exit 1)", async () => {
    const result = await ws.run(["attach", "nobody"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('No builder named "nobody"');
  });
});
