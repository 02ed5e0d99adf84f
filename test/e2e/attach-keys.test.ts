/**
 * `troupe attach` in a real terminal (tmux on a private socket), with the
 * real CLI and daemon: typed bytes reach the agent exactly, the detach
 * sequence detaches and leaves the agent working, it can be changed (flag or
 * config), its doubled last key reaches the agent, and a read-only client
 * sends neither input nor its size.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { TmuxSession, requireTmux } from "../helpers/tmux.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, TestWorkspace, agent, cliEnv } from "./harness.js";

const node = process.execPath;
const NAME = "bytes";
let ws: TestWorkspace;
let record: string;
let agentPid: number;

beforeAll(async () => {
  requireTmux();
  record = mkdtempSync(join(tmpdir(), "troupe-attach-keys-"));
  ws = new TestWorkspace("troupe-attach-keys-");
  await ws.daemonPid();
  await ws.ok(["spawn", NAME, "--", node, agent("cli-bytes.mjs"), record]);
  await waitFor(() => existsSync(join(record, "sizes.log")), "the agent to start");
  agentPid = (await builder()).pid;
});
afterAll(async () => {
  await ws?.close();
  if (record) rmSync(record, { recursive: true, force: true });
});

async function builder(): Promise<{ name: string; pid: number; state: string }> {
  const rows = await ws.ok<Array<{ name: string; pid: number; state: string }>>(["status", "--json"]);
  return rows.find((row) => row.name === NAME)!;
}

/** Everything the agent has read from its terminal. */
function received(): Buffer {
  const file = join(record, "input.bin");
  return existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
}

function sizes(): string[] {
  return readFileSync(join(record, "sizes.log"), "utf8").split("\n").filter(Boolean);
}

/** What the agent reads from now on. */
function receivedFromNow(): { bytes: () => Buffer; waitFor: (bytes: Buffer | string, what: string) => Promise<void> } {
  const mark = received().length;
  const bytes = () => received().subarray(mark);
  return {
    bytes,
    waitFor: async (expected, what) => {
      const want = Buffer.from(expected);
      await waitFor(() => bytes().includes(want), `the agent to read ${what}`);
    },
  };
}

/** `troupe attach bytes <flags>` in a fresh terminal; ends with the test. */
async function attach(flags: string[] = [], size = { cols: 100, rows: 30 }): Promise<TmuxSession> {
  const term = await TmuxSession.start([node, BIN, "attach", NAME, ...flags], { ...size, cwd: ws.repo, env: cliEnv() });
  onTestFinished(() => term.close());
  // The banner goes to the user's own screen, which the agent's then covers until detach: read it in the bytes.
  await term.waitForWritten(/\[attached to bytes \(pid \d+[^)]*\)\. Detach with [^\]\n]+\]/, { what: "the attach banner" });
  return term;
}

async function expectDetached(term: TmuxSession): Promise<void> {
  expect(await term.waitForExit({ what: "troupe attach" })).toBe(0);
  expect(await term.capture()).toContain("[detached from bytes: it keeps running");
  expect(await builder()).toMatchObject({ state: "working", pid: agentPid });
  expect(isProcessAlive(agentPid)).toBe(true);
}

describe("troupe attach in a real terminal", () => {
  it("forwards typed bytes exactly, and Ctrl-] detaches leaving the agent working", async () => {
    const agentReads = receivedFromNow();
    const term = await attach();
    expect(term.written().toString("utf8")).toContain("Detach with Ctrl-]]");
    await term.waitFor(/ready bytes/, { what: "the replayed scrollback" });
    await term.sendText("héllo");
    await term.sendKeys("Enter", "C-c", "Escape");
    await agentReads.waitFor("héllo\r\x03\x1b", "the typed text, Enter, Ctrl-C and Escape");
    await term.waitFor(/^GOT [0-9a-f]*1b$/m, { what: "the agent's echo" });
    await term.sendBytes([0x1d]);
    await expectDetached(term);
    expect(agentReads.bytes().toString("utf8")).toBe("héllo\r\x03\x1b");
  });

  it("Ctrl-] twice sends one Ctrl-] to the agent and stays attached", async () => {
    const agentReads = receivedFromNow();
    const term = await attach();
    await term.sendBytes([0x1d, 0x1d]); // as one write: a double tap
    await term.sendText("after");
    await agentReads.waitFor("\x1dafter", "one Ctrl-] and the text after it");
    expect(agentReads.bytes().toString("latin1")).toBe("\x1dafter");
    expect(await term.exitStatus()).toBeNull();
    await term.sendBytes([0x1d]);
    await expectDetached(term);
  });

  it("--detach-keys ctrl-a,d: Ctrl-] reaches the agent, a partial sequence is forwarded as typed, d doubled sends the sequence, Ctrl-A d detaches", async () => {
    const agentReads = receivedFromNow();
    const term = await attach(["--detach-keys", "ctrl-a,d"]);
    expect(term.written().toString("utf8")).toContain("Detach with Ctrl-A d]");
    await term.sendBytes([0x1d]);
    await agentReads.waitFor("\x1d", "Ctrl-]");
    await term.sendKeys("C-a", "x");
    await agentReads.waitFor("\x01x", "the partial sequence and the key after it");
    await term.sendBytes([0x01, 0x64, 0x64]); // Ctrl-A d d, as one write: a double tap
    await term.sendText("end");
    await agentReads.waitFor("\x01dend", "the sequence once, then the text after it");
    expect(agentReads.bytes().toString("latin1")).toBe("\x1d\x01x\x01dend");
    expect(await term.exitStatus()).toBeNull();
    await term.sendKeys("C-a", "d");
    await expectDetached(term);
  });

  it("the detach keys default to attach.detachKeys in .troupe/config.json", async () => {
    const configFile = join(ws.repo, ".troupe", "config.json");
    const before = existsSync(configFile) ? readFileSync(configFile, "utf8") : null;
    writeFileSync(configFile, JSON.stringify({ ...(before ? JSON.parse(before) : {}), attach: { detachKeys: "ctrl-p,ctrl-q" } }));
    onTestFinished(() => (before === null ? rmSync(configFile, { force: true }) : writeFileSync(configFile, before)));
    const agentReads = receivedFromNow();
    const term = await attach();
    expect(term.written().toString("utf8")).toContain("Detach with Ctrl-P Ctrl-Q]");
    await term.sendBytes([0x1d]);
    await agentReads.waitFor("\x1d", "Ctrl-], no longer the detach key");
    await term.sendKeys("C-p", "C-q");
    await expectDetached(term);
    expect(agentReads.bytes().toString("latin1")).toBe("\x1d");
  });

  it("--read-only shows the terminal but sends no input and no size; the detach key still works", async () => {
    const agentReads = receivedFromNow();
    const sizesBefore = sizes().length;
    const viewer = await attach(["--read-only"], { cols: 70, rows: 20 });
    expect(viewer.written().toString("utf8")).toMatch(/\(pid \d+, read-only\)\. Detach with Ctrl-]]/);
    await viewer.waitFor(/ready bytes/, { what: "the agent's screen" });
    await viewer.sendText("ignored");
    await viewer.sendKeys("Enter", "C-c");
    await viewer.sendBytes([0x1d]);
    await expectDetached(viewer);
    // A client that does type and resize, after it: once its bytes and size arrive, the viewer's would have too.
    const typist = await attach([], { cols: 90, rows: 25 });
    await typist.sendText("typist");
    await agentReads.waitFor("typist", "the second client's text");
    await waitFor(() => sizes().slice(sizesBefore).includes("90x25"), "the second client's size");
    expect(agentReads.bytes().toString("latin1")).toBe("typist");
    expect(sizes().slice(sizesBefore)).not.toContain("70x20");
    await typist.sendBytes([0x1d]);
    await expectDetached(typist);
  });

  it("a bad --detach-keys or config value is a usage error (exit 2) that says where it came from", async () => {
    const flag = await ws.run(["attach", NAME, "--detach-keys", "ctrl-1"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('troupe: --detach-keys: "ctrl-1" is not a detach key sequence (there is no control key "ctrl-1"); write a comma-separated sequence of ctrl-<a-z>');
    expect(flag.stderr).toContain("Run `troupe attach --help` for its usage.");

    const configFile = join(ws.repo, ".troupe", "config.json");
    const before = existsSync(configFile) ? readFileSync(configFile, "utf8") : null;
    writeFileSync(configFile, JSON.stringify({ attach: { detachKeys: "ctrl-a,,d" } }));
    onTestFinished(() => (before === null ? rmSync(configFile, { force: true }) : writeFileSync(configFile, before)));
    const config = await ws.run(["attach", NAME]);
    expect(config.code).toBe(2);
    expect(config.stderr).toContain(`troupe: ${configFile} attach.detachKeys: "ctrl-a,,d" is not a detach key sequence (a key between commas is empty)`);
    // a flag wins over a bad config (with its input ended at once, attach detaches at once)
    const flagWins = await ws.run(["attach", NAME, "--detach-keys", "ctrl-p"]);
    expect(flagWins.code, flagWins.stderr).toBe(0);
    expect(flagWins.stderr).toContain("Detach with Ctrl-P]");
    const help = await ws.run(["attach", "--help"]);
    expect(help.stdout).toContain("--detach-keys <keys>");
    expect(help.stdout).toContain("--read-only");
  });
});
