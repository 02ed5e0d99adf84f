/**
 * The pty host keeps the agent's screen (issue 11): real pty hosts, real
 * agents (a full-screen stand-in, bash, vim, less when installed), and a fresh
 * @xterm/headless in the test as the client's terminal.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SpareHost, connectPtyHost, launchPtyHost, type HostStarted, type PtyHostClient, type PtyHostSpec } from "../../src/actors/index.js";
import { textTranscriptPath, type ScreenText } from "../../src/actors/pty-host/protocol.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { FAKE_AGENT, Transcript, agentEnv, cleanup, tempDir, waitFor } from "./helpers.js";

const require = createRequire(import.meta.url);
const { Terminal } = require("@xterm/headless") as typeof import("@xterm/headless");
type XtermTerminal = InstanceType<typeof Terminal>;

const TUI_AGENT = fileURLToPath(new URL("../fixtures/agents/tui-agent.mjs", import.meta.url));

let dir: string;
let recorded: Array<{ pid: number; start?: number | null }>;
let clients: PtyHostClient[];
let spares: SpareHost[];

beforeEach(() => {
  dir = tempDir("troupe-scr-");
  recorded = [];
  clients = [];
  spares = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  for (const spare of spares) spare.discard();
  await cleanup(dir, recorded);
});

function specFor(cmd: string[], overrides: Partial<PtyHostSpec> = {}): PtyHostSpec {
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  return {
    builderId: "b-1",
    name: "alpha",
    cmd,
    cwd: work,
    env: agentEnv({ TERM: "xterm-256color" }),
    pty: "on",
    socketPath: join(dir, "run", "b-1.sock"),
    transcriptPath: join(dir, "logs", "alpha", "b-1.log"),
    exitStatusPath: join(dir, "run", "b-1.exit.json"),
    logPath: join(dir, "logs", "alpha", "pty-host.log"),
    cols: 80,
    rows: 24,
    ...overrides,
  };
}

async function launch(spec: PtyHostSpec, spare?: SpareHost): Promise<HostStarted> {
  const started = await launchPtyHost(spec, spare ? { spare } : {});
  recorded.push({ pid: started.hostPid, start: started.hostStartTime }, { pid: started.pid, start: started.pidStartTime });
  return started;
}

async function connect(socketPath: string, options: Parameters<typeof connectPtyHost>[1] = {}): Promise<PtyHostClient> {
  const client = await connectPtyHost(socketPath, { timeoutMs: 10_000, ...options });
  clients.push(client);
  return client;
}

/** A fresh terminal of the given size after `data` was written to it: what a client's terminal shows. */
async function terminalAfter(data: string, cols: number, rows: number): Promise<XtermTerminal> {
  const terminal = new Terminal({ cols, rows, scrollback: 10_000, allowProposedApi: true });
  await new Promise<void>((resolve) => terminal.write(data, resolve));
  return terminal;
}

function visibleLines(terminal: XtermTerminal): string[] {
  const buffer = terminal.buffer.active;
  return Array.from({ length: terminal.rows }, (_, y) => buffer.getLine(buffer.baseY + y)?.translateToString(true) ?? "");
}

function untilScreen(client: PtyHostClient, pattern: RegExp, first?: string): Promise<ScreenText> {
  return waitFor(async () => {
    const screen = await client.screenText();
    return screen.lines.some((line) => pattern.test(line)) && (first === undefined || screen.lines[0] === first) ? screen : null;
  }, `${pattern} on the agent's screen${first === undefined ? "" : `, below ${JSON.stringify(first)}`}`);
}

const DRAWN = ["┌ troupe stand-in ┐", "", "  status: thinking", "  words apart: trust this folder", "", "", "", "", "ALL DRAWN"];
const MODES_ON = ["\x1b[?1002h", "\x1b[?1006h", "\x1b=", "\x1b[?1h", "\x1b[?2004h", "\x1b[?1004h", "\x1b[>7u", "\x1b[?25l"];
/** The restore of the stand-in's modes, in the documented order. */
const RESTORE = "\x1b[?1049l" + "\x1b[<1u" + "\x1b[?1002l" + "\x1b[?1006l" + "\x1b[?1l" + "\x1b>" + "\x1b[?1004l" + "\x1b[?2004l" + "\x1b[?25h";

describe("the screen a client attaches to", () => {
  it("is exactly what the agent drew, modes included, after far more output than the scrollback", async () => {
    // 1 MB of spinner in the alternate screen: the 256 KiB byte ring wraps many times over.
    const spec = specFor([process.execPath, TUI_AGENT, "--scroll", "600", "--flood", String(1024 * 1024)], { scrollbackLines: 200 });
    await launch(spec);
    // With the screen, its kitty entry is counted whether it came before or after its hello.
    const watcher = await connect(spec.socketPath, { screen: true });
    const hostScreen = await untilScreen(watcher, /ALL DRAWN/);
    expect(hostScreen).toMatchObject({ cols: 80, rows: 24, alternate: true, title: "stand-in title", cursor: { visible: false } });
    expect(hostScreen.lines.slice(0, DRAWN.length)).toEqual(DRAWN);

    const client = await connect(spec.socketPath, { screen: true, size: { cols: 80, rows: 24 }, client: "test-attach" });
    expect(client.scrollback).toBe("");
    const screen = client.screen!;
    expect(screen).toMatchObject({ cols: 80, rows: 24, alternate: true });
    for (const mode of MODES_ON) expect(screen.data).toContain(mode);
    // The kitty entry goes to the main screen, where the agent pushed it: before the switch.
    expect(screen.data.indexOf("\x1b[>7u")).toBeLessThan(screen.data.indexOf("\x1b[?1049h"));

    const terminal = await terminalAfter(screen.data, screen.cols, screen.rows);
    expect(visibleLines(terminal)).toEqual(hostScreen.lines);
    expect(terminal.buffer.active.type).toBe("alternate");
    expect(terminal.buffer.active.cursorY).toBe(hostScreen.cursor.y);
    expect(terminal.buffer.active.cursorX).toBe(hostScreen.cursor.x);
    expect(terminal.modes).toMatchObject({ mouseTrackingMode: "drag", applicationKeypadMode: true, applicationCursorKeysMode: true, bracketedPasteMode: true, sendFocusMode: true });
    // Under the alternate screen, the normal one holds its last rows (scrollback included).
    const normal = terminal.buffer.normal;
    const normalText = Array.from({ length: normal.length }, (_, y) => normal.getLine(y)?.translateToString(true) ?? "").join("\n");
    expect(normalText).toContain("row 600 alpha beta gamma");
    expect(normalText).toContain("row 450 alpha beta gamma");

    expect(await client.restoreSequence()).toBe(RESTORE);
    await new Promise<void>((resolve) => terminal.write(RESTORE, resolve));
    expect(terminal.buffer.active.type).toBe("normal");
    expect(terminal.modes).toMatchObject({ mouseTrackingMode: "none", applicationKeypadMode: false, applicationCursorKeysMode: false, bracketedPasteMode: false, sendFocusMode: false });
    // The watcher got the kitty entry one way or the other (its handshake or the stream): one to pop.
    expect(await watcher.restoreSequence()).toBe(RESTORE);
  });

  it("the exit frame carries the restore, and the text transcript reads like the screen, without a query", async () => {
    const spec = specFor([process.execPath, TUI_AGENT, "--scroll", "300", "--flood", "20000"], { scrollbackLines: 50 });
    await launch(spec);
    const client = await connect(spec.socketPath, { screen: true, size: { cols: 80, rows: 24 } });
    await untilScreen(client, /ALL DRAWN/);
    const exited = new Promise<string>((resolve) => client.once("exit", (_status, restore) => resolve(restore)));
    await client.stop({ killTimeoutMs: 5_000 });
    expect(await exited).toBe(RESTORE);
    expect(client.lastRestore).toBe(RESTORE);

    const text = readFileSync(textTranscriptPath(spec.transcriptPath), "utf8");
    expect(textTranscriptPath(spec.transcriptPath)).toBe(join(dir, "logs", "alpha", "b-1.txt"));
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    for (const i of [1, 2, 150, 299]) expect(text).toContain(`row ${i} alpha beta gamma\n`);
    expect(text).toContain("words apart: trust this folder");
    expect(text).toContain("ALL DRAWN");
    // Each scrolled-off row once, in order.
    const rows = [...text.matchAll(/^row (\d+) /gm)].map((match) => Number(match[1]));
    expect(rows.slice(0, 300)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    // The byte transcript keeps what was sent, queries included (troupe logs --raw).
    expect(readFileSync(spec.transcriptPath, "utf8")).toContain("\x1b[6n");
  });
});

describe("several clients", () => {
  it("the pty takes the smallest size; each is told who else is attached; read-only input is refused", async () => {
    const spec = specFor([process.execPath, FAKE_AGENT, "--echo", "--resize", "--ready"]);
    await launch(spec);
    const first = await connect(spec.socketPath);
    // Its SIGWINCH handler is set up before READY: a resize before that would go unseen.
    await new Transcript(first).waitFor(/READY/);
    first.close();
    const big = await connect(spec.socketPath, { size: { cols: 100, rows: 30 }, client: "big" });
    const out = new Transcript(big);
    await out.waitFor(/RESIZE 100x30/);
    const viewer = await connect(spec.socketPath, { size: { cols: 90, rows: 40 }, client: "viewer", readOnly: true });
    await out.waitFor(/RESIZE 90x30/);
    expect(viewer.attached).toMatchObject({ cols: 90, rows: 30 });
    expect(viewer.attached!.clients.map((c) => [c.client, c.cols, c.rows, c.readOnly])).toEqual([
      ["big", 100, 30, false],
      ["viewer", 90, 40, true],
    ]);
    await waitFor(() => big.attached?.clients.length === 2 && big.attached.cols === 90, "big to hear of the viewer");

    const refused = await viewer.input("from the viewer\r").then(
      () => null,
      (error: Error) => error,
    );
    expect(isTroupeError(refused, "INVALID_ARGUMENT")).toBe(true);
    expect((refused as { details?: { hostCode?: string } }).details?.hostCode).toBe("READ_ONLY");
    viewer.write("typed by the viewer\r");
    await big.input("typed by big\r");
    await out.waitFor(/ECHO:typed by big/);
    expect(out.text).not.toContain("typed by the viewer");

    // The smaller client leaves: the pty grows to the one that is left.
    const heard = new Promise<void>((resolve) => viewer.on("clients", (attached) => attached.clients.length === 1 && resolve()));
    const rest = new Transcript(viewer);
    big.close();
    await heard;
    await rest.waitFor(/RESIZE 90x40/);
    expect(await viewer.status()).toMatchObject({ cols: 90, rows: 40 });
  });
});

describe("stop and ps", () => {
  it("an interactive bash ends on the hangup, not after the kill timeout", async () => {
    const spec = specFor(["bash", "--norc", "--noprofile", "-i"], { env: agentEnv({ TERM: "xterm-256color", PS1: "ready$ " }) });
    await launch(spec);
    const client = await connect(spec.socketPath);
    await untilScreen(client, /ready\$/);
    expect(await client.stop({ killTimeoutMs: 20_000 })).toMatchObject({ code: null, signal: "SIGHUP" });
  });

  it("ps names the builder, for a host started for it and for a spare that took the work", async () => {
    const args = (pid: number) => execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" }).trim();
    const spec = specFor([process.execPath, FAKE_AGENT, "--hang"]);
    const started = await launch(spec);
    expect(args(started.hostPid)).toMatch(/^troupe pty-host alpha b-1( |$)/);

    const spare = new SpareHost({ runDir: join(dir, "run"), logPath: join(dir, "logs", "spare.log") });
    spares.push(spare);
    const second = specFor([process.execPath, FAKE_AGENT, "--hang"], { builderId: "b-2", name: "beta", socketPath: join(dir, "run", "b-2.sock"), transcriptPath: join(dir, "logs", "beta", "b-2.log") });
    const fromSpare = await launch(second, spare);
    expect(args(fromSpare.hostPid)).toBe("troupe pty-host beta b-2");
  });
});

describe("real full-screen programs", () => {
  it("vim: its screen and modes survive a re-attach, and the restore leaves them", async () => {
    const file = join(dir, "notes.txt");
    writeFileSync(file, Array.from({ length: 40 }, (_, i) => `note ${i + 1}: the quick brown fox`).join("\n") + "\n");
    const spec = specFor(["vim", "-u", "NONE", "-i", "NONE", "-N", "-n", "-c", "set mouse=a ttymouse=sgr", file]);
    await launch(spec);
    const watcher = await connect(spec.socketPath, { size: { cols: 80, rows: 24 } });
    // The watcher's size makes vim redraw: wait for the whole redraw, its first row and its status line.
    const hostScreen = await untilScreen(watcher, /notes\.txt/, "note 1: the quick brown fox");
    expect(hostScreen.alternate).toBe(true);

    const client = await connect(spec.socketPath, { screen: true, size: { cols: 80, rows: 24 } });
    const terminal = await terminalAfter(client.screen!.data, 80, 24);
    expect(visibleLines(terminal)).toEqual((await client.screenText()).lines);
    expect(terminal.buffer.active.type).toBe("alternate");
    expect(terminal.modes.mouseTrackingMode).not.toBe("none");
    expect(client.screen!.data).toContain("\x1b[?1006h");

    const restore = await client.restoreSequence();
    expect(restore).toContain("\x1b[?1049l");
    expect(restore).toContain("\x1b[?1006l");
    await new Promise<void>((resolve) => terminal.write(restore, resolve));
    expect(terminal.buffer.active.type).toBe("normal");
    expect(terminal.modes.mouseTrackingMode).toBe("none");

    const exited = new Promise<string>((resolve) => client.once("exit", (_status, after) => resolve(after)));
    await client.input("\x1b:qa!\r");
    // vim undid its own modes on the way out: nothing left to restore.
    expect(await exited).toBe("");
  });

  it("less: the page survives a re-attach", async () => {
    const file = join(dir, "page.txt");
    writeFileSync(file, Array.from({ length: 100 }, (_, i) => `page line ${i + 1}`).join("\n") + "\n");
    const spec = specFor(["less", file], { env: agentEnv({ TERM: "xterm-256color", LESS: "", LESSHISTFILE: "-" }) });
    await launch(spec);
    const watcher = await connect(spec.socketPath, { size: { cols: 80, rows: 24 } });
    await untilScreen(watcher, /page line 23/, "page line 1");
    const client = await connect(spec.socketPath, { screen: true, size: { cols: 80, rows: 24 } });
    const terminal = await terminalAfter(client.screen!.data, 80, 24);
    const lines = visibleLines(terminal);
    expect(lines).toEqual((await client.screenText()).lines);
    expect(lines[0]).toBe("page line 1");
    client.write("q");
    await new Promise((resolve) => client.once("exit", resolve));
  });
});
