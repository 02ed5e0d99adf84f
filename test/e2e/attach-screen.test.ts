/**
 * `troupe attach` shows the agent's screen and gives the user's terminal back
 * (issue 11): real CLI, real daemon, real pty hosts, and tmux as the user's
 * terminal. Each pane runs a shell that prints two lines, waits for Enter,
 * attaches, then stays (so its screen and modes can be read after detach).
 * The truth the screens are checked against is the host's own screen
 * (PtyHostClient.screenText()) and the stand-in's known drawing; the bytes on
 * detach are checked against the restore table of test/actors/screen.test.ts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { connectPtyHost, type PtyHostClient } from "../../src/actors/pty-host/client.js";
import type { ScreenText } from "../../src/actors/pty-host/protocol.js";
import { workspaceLayout } from "../../src/shared/layout.js";
import { TmuxSession, requireTmux, shellQuote } from "../helpers/tmux.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, TestWorkspace, agent, cliEnv } from "./harness.js";

const node = process.execPath;
let ws: TestWorkspace;
const hosts: PtyHostClient[] = [];

/** The stand-in's drawing (test/fixtures/agents/tui-agent.mjs), top rows of its alternate screen. */
const DRAWN = ["┌ troupe stand-in ┐", "", "  status: thinking", "  words apart: trust this folder", "", "", "", "", "ALL DRAWN"];
/** What undoes the stand-in's modes, in the host's order: alt screen, kitty pop, mouse, cursor keys, keypad, focus, paste, cursor. */
const RESTORE = "\x1b[?1049l" + "\x1b[<1u" + "\x1b[?1002l" + "\x1b[?1006l" + "\x1b[?1l" + "\x1b>" + "\x1b[?1004l" + "\x1b[?2004l" + "\x1b[?25h";
/** Attach's own alternate screen, left last. */
const CLOSE_SCREEN = "\x1b[?1049l";
/** tmux's view of the pane's modes. */
const FLAGS = "#{alternate_on} #{mouse_any_flag} #{keypad_flag} #{keypad_cursor_flag} #{cursor_flag}";

beforeAll(async () => {
  requireTmux();
  ws = new TestWorkspace("troupe-attach-screen-");
  await ws.daemonPid();
  // 600 lines, then 1 MiB of spinner in the alternate screen: the 256 KiB byte ring wraps four times over.
  const tui = await spawn("tui", [node, agent("tui-agent.mjs"), "--scroll", "600", "--flood", String(1024 * 1024)]);
  await untilScreen(tui, /ALL DRAWN/);
}, 60_000);
afterAll(async () => {
  for (const host of hosts) host.close();
  await ws?.close();
});

/** Spawns a builder; returns a connection to its host that reports no size (it never resizes the pty). */
async function spawn(name: string, argv: string[]): Promise<PtyHostClient> {
  const { id } = await ws.ok<{ id: string }>(["spawn", name, "--pty", "on", "--json", "--", ...argv]);
  const socket = workspaceLayout(ws.repo).ptySocketPath(id);
  const host = await waitFor(() => connectPtyHost(socket, { timeoutMs: 10_000 }).catch(() => null), `the pty host of ${name}`);
  hosts.push(host);
  return host;
}

function untilScreen(host: PtyHostClient, pattern: RegExp): Promise<ScreenText> {
  return waitFor(async () => {
    const screen = await host.screenText();
    return screen.lines.some((line) => pattern.test(line)) ? screen : null;
  }, `${pattern} on the agent's screen`);
}

interface Pane {
  term: TmuxSession;
  /** The screen and modes just before Enter started the attach. */
  before: { screen: string[]; flags: string };
  flags(): Promise<string>;
  lines(): Promise<string[]>;
  /** Detaches with Ctrl-]; resolves to every byte attach wrote from the detach key on, once the shell is back. */
  detach(): Promise<string>;
}

/** A shell in a fresh tmux pane that prints two lines, waits for Enter, runs `troupe attach <args>`, then stays. */
async function pane(args: string[], size = { cols: 100, rows: 30 }): Promise<Pane> {
  const attach = [node, BIN, "attach", ...args].map(shellQuote).join(" ");
  const script = `printf 'BEFORE-1 my shell\\nBEFORE-2 its output\\n'; read go; ${attach}; echo "ATTACH-EXIT $?"; read done`;
  const term = await TmuxSession.start(["sh", "-c", script], { ...size, cwd: ws.repo, env: cliEnv() });
  onTestFinished(() => term.close());
  const flags = async () => (await term.run(["display-message", "-p", "-t", "main", FLAGS])).trim();
  const lines = async () => (await term.capture()).split("\n").slice(0, size.rows);
  const screen = await term.waitFor(/BEFORE-2 its output/, { what: "the shell's lines" });
  const before = { screen: screen.split("\n").slice(0, 2), flags: await flags() };
  await term.sendKeys("Enter");
  await term.waitForWritten(/\[attached to [^\]]*\]/, { what: "the attach banner" });
  return {
    term,
    before,
    flags,
    lines,
    detach: async () => {
      const mark = await settledWritten({ term });
      await term.sendBytes([0x1d]);
      await term.waitFor(/ATTACH-EXIT \d+/, { what: "the shell after troupe attach" });
      await term.waitForWritten(/ATTACH-EXIT/, { what: "the shell's line in the bytes" });
      return term.written().subarray(mark).toString("utf8");
    },
  };
}

/**
 * How many bytes the pane has written, once tmux's pipe has caught up with
 * the screen: the count is the same on two looks 200 ms apart.
 */
async function settledWritten(p: { term: TmuxSession }): Promise<number> {
  let last = -1;
  return waitFor(async () => {
    const now = p.term.written().length;
    if (now === last) return now;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 200));
    return p.term.written().length === last ? last : null;
  }, "the bytes written to the pane to settle");
}

/** After detach: the shell's lines are where they were, and tmux's modes are as before the attach. */
async function expectGivenBack(p: Pane, name: string): Promise<void> {
  const lines = await p.lines();
  expect(lines.slice(0, 2)).toEqual(p.before.screen);
  // The line the shell's `read` echoed the Enter on, then what attach said, then the shell again.
  expect(lines[2]).toBe("");
  expect(lines[3]).toMatch(new RegExp(`^\\[attached to ${name} \\(pid \\d+[^)]*\\)\\. Detach with Ctrl-]`));
  expect(lines[4]).toBe(`[detached from ${name}: it keeps running; \`troupe attach ${name}\` to come back]`);
  expect(lines[5]).toBe("ATTACH-EXIT 0");
  expect(await p.flags()).toBe(p.before.flags);
}

describe("attach to a full-screen agent that printed far more than the scrollback", () => {
  it("shows exactly the agent's screen; detach writes its restore and gives the shell back", async () => {
    const p = await pane(["tui"]);
    expect(p.before.flags).toBe("0 0 0 0 1");
    await p.term.waitFor(/ALL DRAWN/, { what: "the stand-in's screen" });
    // The host's screen, at the size this window gave it in its hello.
    const host = hosts[0]!;
    const truth = await host.screenText();
    expect(truth).toMatchObject({ cols: 100, rows: 30, alternate: true });
    expect(truth.lines.slice(0, DRAWN.length)).toEqual(DRAWN);
    await p.term.waitFor((screen) => screen.split("\n").slice(0, 30).join("\n") === truth.lines.join("\n"), { what: "the host's screen, row for row" });
    // In the alternate screen, with the stand-in's mouse, keypad and cursor keys on and its cursor hidden.
    expect(await p.flags()).toBe("1 1 1 1 0");

    const written = await p.detach();
    const restore = written.slice(0, written.indexOf("[detached from tui"));
    expect(restore).toBe(RESTORE + CLOSE_SCREEN);
    await expectGivenBack(p, "tui");
  });

  it("a SIGTERM to attach itself gives the terminal back as a detach does", async () => {
    const p = await pane(["tui"]);
    await p.term.waitFor(/ALL DRAWN/, { what: "the stand-in's screen" });
    const mark = await settledWritten(p);
    const client = p.term.sessionPids().find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("attach"));
    expect(client, "the troupe attach process in the pane").toBeDefined();
    process.kill(client!, "SIGTERM");
    await p.term.waitFor(/ATTACH-EXIT 0/, { what: "the shell after troupe attach" });
    await p.term.waitForWritten(/ATTACH-EXIT/, { what: "the shell's line in the bytes" });
    const written = p.term.written().subarray(mark).toString("utf8");
    expect(written.slice(0, written.indexOf("[SIGTERM: detached from tui"))).toBe(RESTORE + CLOSE_SCREEN);
    expect(await p.flags()).toBe(p.before.flags);
    expect((await ws.ok<Array<{ name: string; state: string }>>(["status", "--json"])).find((b) => b.name === "tui")?.state).toBe("working");
  });

  it("--read-only gets the same screen and the same restore", async () => {
    const p = await pane(["tui", "--read-only"]);
    await p.term.waitFor(/ALL DRAWN/, { what: "the stand-in's screen" });
    const truth = await hosts[0]!.screenText();
    await p.term.waitFor((screen) => screen.split("\n").slice(0, truth.rows).join("\n") === truth.lines.join("\n"), { what: "the host's screen, row for row" });
    const written = await p.detach();
    expect(written.slice(0, written.indexOf("[detached from tui"))).toBe(RESTORE + CLOSE_SCREEN);
    await expectGivenBack(p, "tui");
  });
});

describe("vim as a builder", () => {
  it("attach shows vim; detach leaves tmux's modes and screen as they were", async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `note ${i + 1}: the quick brown fox`);
    const file = `${ws.repo}/notes.txt`;
    writeFileSync(file, `${lines.join("\n")}\n`);
    const host = await spawn("vim", ["env", "TERM=xterm-256color", "vim", "-u", "NONE", "-i", "NONE", "-N", "-n", "-c", "set mouse=a ttymouse=sgr", file]);
    await untilScreen(host, /notes\.txt/);
    const p = await pane(["vim"]);
    await p.term.waitFor(/^note 1: the quick brown fox$/m, { what: "vim's screen" });
    // vim redraws at this window's size: each look compares the pane with the host's screen of that moment.
    await waitFor(async () => {
      const truth = await host.screenText();
      const screen = await p.lines();
      return truth.cols === 100 && truth.rows === 30 && screen.join("\n") === truth.lines.join("\n");
    }, "the pane to show the host's screen of vim, row for row");
    // vim's alternate screen, mouse (mouse=a), keypad and cursor keys (t_ks) are on in the pane.
    expect(await p.flags()).toBe("1 1 1 1 1");
    const written = await p.detach();
    const restore = written.slice(0, written.indexOf("[detached from vim"));
    for (const off of ["\x1b[?1049l", "\x1b[?1006l", "\x1b[?1l", "\x1b>"]) expect(restore).toContain(off);
    expect(restore.endsWith(CLOSE_SCREEN)).toBe(true);
    await expectGivenBack(p, "vim");
  });
});

describe("several terminals", () => {
  it("a smaller window shrinks the pty: the bigger one blanks what lies outside, and the banner says who else is attached", async () => {
    // Draws once its terminal is 100×30 (the big window's size), never again: only attach can clear what a shrink leaves.
    const script = [
      "let drawn = false;",
      "const draw = () => {",
      "  const { columns: c, rows: r } = process.stdout;",
      "  if (drawn || c !== 100 || r !== 30) return;",
      "  drawn = true;",
      '  let s = "\\x1b[H\\x1b[2J";',
      '  for (let i = 0; i < r - 1; i++) s += String(i).padEnd(c - 1, "x") + "\\r\\n";',
      '  process.stdout.write(s + "WIDE READY");',
      "};",
      'draw(); process.stdout.on("resize", draw); setInterval(() => {}, 1 << 30);',
    ].join("\n");
    const host = await spawn("wide", [node, "-e", script]);
    const big = await pane(["wide"]);
    await big.term.waitFor(/WIDE READY/, { what: "the wide drawing" });
    expect((await big.lines())[0]!.length).toBe(99);
    const bigBanner = big.term.written().toString("utf8");
    expect(bigBanner).toMatch(/\[attached to wide \(pid \d+\)\. Detach with Ctrl-]]/);

    const small = await pane(["wide"], { cols: 80, rows: 24 });
    expect(small.term.written().toString("utf8")).toMatch(/\[attached to wide \(pid \d+\)\. Detach with Ctrl-]\. 1 other terminal attached\]/);
    await waitFor(async () => (await host.status()).cols === 80, "the pty to take the smaller size");
    // Nothing right of column 80 or below row 24 in the big window: the agent cannot draw there.
    await big.term.waitFor(
      (screen) => {
        const rows = screen.split("\n").slice(0, 30);
        return rows.every((row) => row.length <= 80) && rows.slice(24).every((row) => row === "");
      },
      { what: "nothing outside 80×24" },
    );
    expect((await big.lines())[0]).toBe("0".padEnd(80, "x"));

    const third = await pane(["wide"]);
    expect(third.term.written().toString("utf8")).toMatch(/Detach with Ctrl-]\. 2 other terminals attached; the terminal is 80×24, the smallest\]/);
    for (const p of [third, small, big]) await p.detach();
  });
});

describe("the other ways out", () => {
  it("the agent's exit writes the restore its exit frame carries; a host that vanishes gets every mode off", async () => {
    const stand = (name: string) => spawn(name, [node, agent("tui-agent.mjs"), "--scroll", "50", "--flood", "20000"]);
    /** The bytes attach wrote from `mark` on up to `message`, once the shell is back. */
    const endedWith = async (p: Pane, mark: number, message: string) => {
      await p.term.waitFor(/ATTACH-EXIT \d+/, { what: "the shell after troupe attach" });
      await p.term.waitForWritten(/ATTACH-EXIT/, { what: "the shell's line in the bytes" });
      const written = p.term.written().subarray(mark).toString("utf8");
      return written.slice(0, written.indexOf(message));
    };

    const exiting = await stand("exiting");
    await untilScreen(exiting, /ALL DRAWN/);
    const p = await pane(["exiting"]);
    await p.term.waitFor(/ALL DRAWN/, { what: "the stand-in's screen" });
    // The stand-in is idle once drawn: all attach writes from here on is its way out.
    const beforeStop = await settledWritten(p);
    await ws.ok(["stop", "exiting"]);
    expect(await endedWith(p, beforeStop, "[exiting's agent exited")).toBe(RESTORE + CLOSE_SCREEN);
    expect(await p.flags()).toBe(p.before.flags);

    const vanishing = await stand("vanishing");
    await untilScreen(vanishing, /ALL DRAWN/);
    const q = await pane(["vanishing"]);
    await q.term.waitFor(/ALL DRAWN/, { what: "the stand-in's screen" });
    const beforeKill = await settledWritten(q);
    process.kill(vanishing.identity.hostPid, "SIGKILL");
    const onVanish = await endedWith(q, beforeKill, "[the terminal of vanishing closed]");
    const fallback = "\x1b[?1049l\x1b[?25h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b>\x1b[?1l\x1b[?1004l\x1b[?2004l\x1b[0m";
    expect(onVanish).toBe(fallback + CLOSE_SCREEN);
    const lines = await q.lines();
    expect(lines.slice(0, 2)).toEqual(q.before.screen);
    expect(lines[4]).toBe("[the terminal of vanishing closed]");
    expect(await q.flags()).toBe(q.before.flags);
  });
});
