import { describe, expect, it } from "vitest";
import { LineDecoder, chunkText, encodeFrame, parseFrame } from "../../src/actors/pty-host/protocol.js";
import { ScrollbackRing } from "../../src/actors/pty-host/ring.js";

describe("ScrollbackRing", () => {
  it("keeps the most recent bytes, whole characters only", () => {
    const ring = new ScrollbackRing(10);
    ring.push("abc");
    ring.push("def");
    expect(ring.toString()).toBe("abcdef");
    ring.push("ghijkl");
    expect(ring.toString()).toBe("cdefghijkl");
    expect(ring.bytes).toBe(10);
    ring.push("é€"); // 2 + 3 bytes
    expect(ring.toString()).toBe("hijkl" + "é€");
    ring.push("x".repeat(25));
    expect(ring.toString()).toBe("x".repeat(10));
    // a cut inside a multi-byte character drops the partial character
    const wide = new ScrollbackRing(4);
    wide.push("€€"); // 6 bytes: the first € cannot be kept whole
    expect(wide.toString()).toBe("€");
    expect(wide.bytes).toBe(3);
  });

  it("stays bounded under a flood of tiny writes", () => {
    const ring = new ScrollbackRing(1000);
    for (let i = 0; i < 100_000; i++) ring.push(String(i % 10));
    expect(ring.bytes).toBe(1000);
    expect(ring.toString()).toHaveLength(1000);
    expect(ring.toString().endsWith("6789")).toBe(true);
  });
});

describe("framing", () => {
  it("splits lines across chunks, including multi-byte characters", () => {
    const decoder = new LineDecoder();
    const bytes = Buffer.from(encodeFrame({ type: "output", data: "héllo €" }) + encodeFrame({ type: "output", data: "2" }));
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 3) lines.push(...decoder.push(bytes.subarray(i, i + 3)));
    expect(lines.map((line) => parseFrame(line))).toEqual([
      { type: "output", data: "héllo €" },
      { type: "output", data: "2" },
    ]);
  });

  it("refuses a frame over the limit and ignores non-frames", () => {
    const decoder = new LineDecoder(100);
    expect(() => decoder.push("x".repeat(101))).toThrow(/longer than 100/);
    expect(parseFrame("not json")).toBeNull();
    expect(parseFrame("[1,2]")).toBeNull();
    expect(parseFrame('{"no":"type"}')).toBeNull();
  });

  it("chunks long input without splitting surrogate pairs", () => {
    const text = "a" + "😀".repeat(10);
    const pieces = chunkText(text, 4);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) {
      expect(piece.length).toBeLessThanOrEqual(4);
      expect(() => encodeURIComponent(piece)).not.toThrow(); // a lone surrogate would throw
    }
  });
});
