/**
 * `troupe screen` and `troupe logs` read like the screen (issue 11): the
 * stand-in full-screen agent separates its words with cursor moves and mixes
 * terminal queries into its output, as Claude Code and Codex do. What a person
 * checks: the screen command shows the words the agent drew, `logs` greps like
 * the screen reads and never carries a byte that makes a terminal answer, and
 * `--raw` still gives every byte.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuilderScreen } from "../../src/shared/contract.js";
import { waitFor } from "../helpers/workspace.js";
import { TestWorkspace, agent } from "./harness.js";

const node = process.execPath;
/** Bytes that make a terminal reply: DSR, DA2, DECRQM, an OSC colour query. */
const QUERIES = [/\x1b\[6n/, /\x1b\[>c/, /\x1b\[\?2004\$p/, /\x1b\]10;\?/];

type Screen = BuilderScreen;

let ws: TestWorkspace;

beforeAll(async () => {
  ws = new TestWorkspace("troupe-screen-");
  await ws.ok(["spawn", "tui", "--", node, agent("tui-agent.mjs"), "--scroll", "300"]);
  await waitFor(async () => (await ws.ok<Screen>(["screen", "tui", "--json"])).lines.some((line) => line.includes("ALL DRAWN")), "the stand-in to draw its screen");
});
afterAll(async () => {
  await ws?.close();
});

describe("troupe screen", () => {
  it("prints the screen the agent drew, as text: words apart as they look, title, alternate screen, hidden cursor", async () => {
    const screen = await ws.ok<Screen>(["screen", "tui", "--json"]);
    expect(screen).toMatchObject({ name: "tui", title: "stand-in title", alternate: true, cursor: { visible: false } });
    expect(screen.lines[0]).toBe("┌ troupe stand-in ┐");
    expect(screen.lines[3]).toBe("  words apart: trust this folder");
    const text = await ws.ok<string>(["screen", "tui"]);
    expect(text).toContain("words apart: trust this folder");
    expect(text).toContain("ALL DRAWN");
    expect(text).not.toMatch(/\x1b/);
  });

  it("refuses a builder that has no terminal to read, saying what to do", async () => {
    await ws.ok(["spawn", "gone", "--restart", "temporary", "--", node, "-e", "process.exit(0)"]);
    await waitFor(async () => (await ws.ok<Array<{ name: string; state: string }>>(["status", "--json"])).find((b) => b.name === "gone")?.state === "completed", "gone to complete");
    const result = await ws.run(["screen", "gone"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no agent runs in its terminal.*troupe logs gone/);
  });
});

describe("troupe logs", () => {
  it("reads like the screen: the scrolled-off rows with their words, the screen now, and no terminal query", async () => {
    const text = await ws.ok<string>(["logs", "tui"]);
    expect(text).toContain("row 1 alpha beta gamma\n");
    expect(text).toContain("row 250 alpha beta gamma\n");
    expect(text).toContain("words apart: trust this folder");
    expect(text.split("\n").filter((line) => /alpha beta gamma/.test(line)).length).toBeGreaterThanOrEqual(250);
    for (const query of QUERIES) expect(text).not.toMatch(query);
    expect(text).not.toMatch(/\x1b/);
  });

  it("--raw is the byte transcript, queries and all; --json names both files", async () => {
    const raw = await ws.ok<string>(["logs", "tui", "--raw"]);
    for (const query of QUERIES) expect(raw).toMatch(query);
    const info = await ws.ok<{ path: string; textPath: string; content: string }>(["logs", "tui", "--json"]);
    expect(info.path).toMatch(/\.log$/);
    expect(info.textPath).toMatch(/\.txt$/);
    expect(info.content).toContain("row 1 alpha beta gamma");
    expect(info.content).not.toMatch(/\x1b/);
  });
});
