/** The tmux harness itself: a private server, a pane of the asked size, keys in, screen and bytes out, and nothing left behind. */
import { existsSync } from "node:fs";
import { describe, expect, it, onTestFinished } from "vitest";
import { TmuxSession } from "../helpers/tmux.js";

describe("TmuxSession", () => {
  it("runs a shell in a pane of the given size, types into it, captures the screen and the bytes written", async () => {
    const term = await TmuxSession.start(["sh"], { cols: 72, rows: 12, env: { ...process.env, PS1: "$ ", ENV: "" } });
    try {
      await term.waitFor(/^\$/m, { what: "the prompt" });
      await term.sendText("stty size; printf 'a\\033[1mbold\\033[0m\\n'");
      await term.sendKeys("Enter");
      const screen = await term.waitFor(/abold/, { what: "the printf output" });
      expect(screen).toContain("12 72");
      expect(await term.capture({ escapes: true })).toMatch(/a\u001b\[1mbold/);
      // the bytes the shell wrote, escapes and all, from its first prompt on
      expect(await term.waitForWritten(/bold\u001b\[0m\r\n/)).toMatch(/^\$ .*a\u001b\[1mbold\u001b\[0m\r\n/s);
      await term.sendBytes([0x65, 0x78, 0x69, 0x74, 0x20, 0x37, 0x0d]); // "exit 7\r"
      expect(await term.waitForExit()).toBe(7);
    } finally {
      await term.close();
    }
    expect(existsSync(term.dir)).toBe(false);
  });

  it("close() ends the pane's process and removes the server's directory, even with the command still running", async () => {
    const term = await TmuxSession.start(["sleep", "600"], { cols: 40, rows: 5 });
    onTestFinished(() => term.close());
    expect(term.sessionPids()).toContain(term.panePid);
    expect(await term.exitStatus()).toBeNull();
    await term.close();
    expect(term.sessionPids()).toEqual([]);
    expect(existsSync(term.socket)).toBe(false);
    await term.close(); // twice is harmless
  });

  it("a wait that never matches fails with what the screen showed", async () => {
    const term = await TmuxSession.start(["sh", "-c", "echo nothing-to-see; exec sleep 600"], { cols: 40, rows: 5 });
    try {
      await term.waitFor(/nothing-to-see/);
      await expect(term.waitFor(/never/, { timeoutMs: 200, what: "a word it never prints" })).rejects.toThrow(/a word it never prints; it shows:\nnothing-to-see/);
    } finally {
      await term.close();
    }
  });
});
