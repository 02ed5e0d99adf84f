import { describe, expect, it } from "vitest";
import { LineFramer } from "../../src/shared/lines.js";

function framer(maxLineBytes = 1024) {
  const lines: string[] = [];
  const overflows: number[] = [];
  const f = new LineFramer({ maxLineBytes, onLine: (line) => lines.push(line), onOverflow: (limit) => overflows.push(limit) });
  return { f, lines, overflows };
}

describe("LineFramer", () => {
  it("cuts lines across chunks without splitting a multi-byte character", () => {
    const { f, lines } = framer();
    const bytes = Buffer.from("héllo €😀\nsecond ünï\n");
    // one byte at a time: every multi-byte character is cut somewhere
    for (let i = 0; i < bytes.length; i++) f.push(bytes.subarray(i, i + 1));
    expect(lines).toEqual(["héllo €😀", "second ünï"]);
  });

  it("takes strings and Buffers alike, and skips blank lines", () => {
    const { f, lines } = framer();
    f.push("one\n\n   \ntw");
    f.push(Buffer.from("o\nthree"));
    expect(lines).toEqual(["one", "two"]);
    f.end();
    expect(lines).toEqual(["one", "two", "three"]);
    f.push("ignored after end\n");
    expect(lines).toHaveLength(3);
  });

  it("counts the limit in bytes and stops at the first line over it", () => {
    const { f, lines, overflows } = framer(4);
    f.push("abcd\n€€\nlater\n"); // "€€" is 6 bytes
    expect(lines).toEqual(["abcd"]);
    expect(overflows).toEqual([4]);
    expect(f.stopped).toBe(true);
    f.push("more\n");
    expect(lines).toEqual(["abcd"]);
    expect(overflows).toEqual([4]);
  });

  it("overflows on an unterminated line as soon as it is too long", () => {
    const { f, overflows } = framer(10);
    f.push("12345");
    expect(overflows).toEqual([]);
    f.push("678901");
    expect(overflows).toEqual([10]);
  });

  it("stops delivering when a line's handler stops it", () => {
    const lines: string[] = [];
    const f: LineFramer = new LineFramer({
      maxLineBytes: 100,
      onLine: (line) => {
        lines.push(line);
        f.stop();
      },
      onOverflow: () => undefined,
    });
    f.push("a\nb\nc\n");
    expect(lines).toEqual(["a"]);
  });
});
