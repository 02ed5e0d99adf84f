/** `--detach-keys`: Docker's syntax, and the filter that finds the sequence in typed bytes. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DOUBLE_KEY_WINDOW_MS, DetachFilter, parseDetachKeys, resolveDetachKeys } from "../../src/cli/detach-keys.js";
import { isTroupeError } from "../../src/shared/errors.js";

describe("parseDetachKeys", () => {
  it.each([
    ["ctrl-]", [0x1d], "Ctrl-]"],
    ["ctrl-p,ctrl-q", [0x10, 0x11], "Ctrl-P Ctrl-Q"],
    ["ctrl-a,d", [0x01, 0x64], "Ctrl-A d"],
    ["CTRL-A,D", [0x01, 0x44], "Ctrl-A D"],
    ["ctrl-@,ctrl-[,ctrl-\\,ctrl-^,ctrl-_", [0x00, 0x1b, 0x1c, 0x1e, 0x1f], "Ctrl-@ Ctrl-[ Ctrl-\\ Ctrl-^ Ctrl-_"],
    ["q", [0x71], "q"],
  ])("%j → bytes %j", (spec, bytes, label) => {
    expect(parseDetachKeys(spec, "--detach-keys")).toEqual({ bytes: Buffer.from(bytes), label });
  });

  it.each(["", "ctrl-", "ctrl-1", "ctrl-ab", "ab", "a,,b", ",", "é", "\t"])("refuses %j as a usage error that names its source", (spec) => {
    let error: unknown;
    try {
      parseDetachKeys(spec, "--detach-keys");
    } catch (caught) {
      error = caught;
    }
    expect(isTroupeError(error, "USAGE")).toBe(true);
    expect((error as { exitCode: number }).exitCode).toBe(2);
    expect((error as Error).message).toMatch(/^--detach-keys: .* is not a detach key sequence .*e\.g\. ctrl-p,ctrl-q/);
  });
});

describe("resolveDetachKeys", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "troupe-detach-keys-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const config = (text: string) => {
    const file = join(dir, "config.json");
    writeFileSync(file, text);
    return file;
  };

  it("the flag wins over the config, the config over the default", () => {
    const file = config(JSON.stringify({ attach: { detachKeys: "ctrl-a,d" } }));
    expect(resolveDetachKeys("ctrl-p,ctrl-q", file).label).toBe("Ctrl-P Ctrl-Q");
    expect(resolveDetachKeys(undefined, file).label).toBe("Ctrl-A d");
    expect(resolveDetachKeys(undefined, join(dir, "absent.json")).label).toBe("Ctrl-]");
    expect(resolveDetachKeys(undefined, config(JSON.stringify({ profiles: {} }))).label).toBe("Ctrl-]");
    expect(resolveDetachKeys(undefined, null).label).toBe("Ctrl-]");
  });

  it.each([
    [JSON.stringify({ attach: { detachKeys: "ctrl-" } }), /config\.json attach\.detachKeys: "ctrl-" is not a detach key sequence/],
    [JSON.stringify({ attach: { detachKeys: 7 } }), /config\.json: attach\.detachKeys must be a string/],
    [JSON.stringify({ attach: "ctrl-a" }), /config\.json: "attach" must be an object/],
    ["{ not json", /config\.json is not valid JSON .*: fix or remove it, or pass --detach-keys/],
  ])("a bad config %s is a usage error naming the file", (text, message) => {
    const file = config(text);
    expect(() => resolveDetachKeys(undefined, file)).toThrow(message);
    // the flag does not read the config at all
    expect(resolveDetachKeys("ctrl-]", file).label).toBe("Ctrl-]");
  });
});

describe("DetachFilter", () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "clearImmediate"] }));
  afterEach(() => vi.useRealTimers());
  /** Lets `ms` pass, then the immediate a timer due by then scheduled (the fake clock runs it a tick later). */
  const elapse = (ms: number) => {
    vi.advanceTimersByTime(ms);
    vi.advanceTimersByTime(1);
  };

  function filter(spec: string) {
    const forwarded: number[] = [];
    let detached = 0;
    const detach = new DetachFilter(parseDetachKeys(spec, "test"), { forward: (bytes) => forwarded.push(...bytes), detach: () => detached++ });
    const type = (...chunks: Array<string | number[]>) => {
      for (const chunk of chunks) detach.push(typeof chunk === "string" ? Buffer.from(chunk, "latin1") : Buffer.from(chunk));
    };
    return { detach, type, forwarded: () => Buffer.from(forwarded).toString("latin1"), detached: () => detached };
  }

  it("passes ordinary input through at once", () => {
    const f = filter("ctrl-]");
    f.type("hello", "\r");
    expect(f.forwarded()).toBe("hello\r");
    expect(f.detached()).toBe(0);
  });

  it("detaches once the double-key window passes after the sequence, and forwards what came before it", () => {
    const f = filter("ctrl-]");
    f.type("ab\x1d");
    expect(f.forwarded()).toBe("ab");
    vi.advanceTimersByTime(DOUBLE_KEY_WINDOW_MS - 1);
    expect(f.detached()).toBe(0);
    elapse(1);
    expect(f.detached()).toBe(1);
    f.type("late");
    expect(f.forwarded()).toBe("ab");
  });

  it("a doubled key sends one to the agent and stays attached, in one chunk or two", () => {
    const f = filter("ctrl-]");
    f.type("\x1d\x1d");
    f.type("\x1d", "\x1dx");
    elapse(DOUBLE_KEY_WINDOW_MS * 2);
    expect(f.forwarded()).toBe("\x1d\x1dx");
    expect(f.detached()).toBe(0);
  });

  it("a second key that was waiting unread when the window's timer ran (a stalled machine) still counts as doubled", () => {
    const f = filter("ctrl-]");
    f.type("\x1d");
    vi.advanceTimersByTime(DOUBLE_KEY_WINDOW_MS); // the timer ran; the input it would have missed is read next
    f.type("\x1d");
    elapse(DOUBLE_KEY_WINDOW_MS);
    expect(f.forwarded()).toBe("\x1d");
    expect(f.detached()).toBe(0);
  });

  it("another key right after the sequence detaches at once", () => {
    const f = filter("ctrl-]");
    f.type("\x1dq");
    expect(f.detached()).toBe(1);
    expect(f.forwarded()).toBe("");
  });

  it("a sequence of two: its last key doubled sends the sequence once; a partial one is forwarded as typed", () => {
    const f = filter("ctrl-a,d");
    f.type("\x01dd");
    expect(f.forwarded()).toBe("\x01d");
    f.type("\x01x", "\x1d");
    expect(f.forwarded()).toBe("\x01d\x01x\x1d");
    f.type("\x01\x01", "d");
    expect(f.forwarded()).toBe("\x01d\x01x\x1d\x01");
    elapse(DOUBLE_KEY_WINDOW_MS);
    expect(f.detached()).toBe(1);
  });

  it("a held prefix waits for the next key however long it takes", () => {
    const f = filter("ctrl-p,ctrl-q");
    f.type([0x10]);
    elapse(60_000);
    expect(f.forwarded()).toBe("");
    f.type([0x11]);
    elapse(DOUBLE_KEY_WINDOW_MS);
    expect(f.detached()).toBe(1);
  });

  it("end of input: a held prefix is forwarded, a pending sequence detaches", () => {
    const partial = filter("ctrl-a,d");
    partial.type("x\x01");
    partial.detach.end();
    expect(partial.forwarded()).toBe("x\x01");
    expect(partial.detached()).toBe(0);
    const full = filter("ctrl-a,d");
    full.type("\x01d");
    full.detach.end();
    expect(full.detached()).toBe(1);
  });

  it("dispose leaves no timer behind", () => {
    const f = filter("ctrl-]");
    f.type("\x1d");
    f.detach.dispose();
    elapse(DOUBLE_KEY_WINDOW_MS * 2);
    expect(f.detached()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
