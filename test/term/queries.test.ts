import { describe, expect, it } from "vitest";
import { QueryFilter, withoutQueries } from "../../src/term/queries.js";

const ESC = "\x1b";

describe("terminal queries are taken out of what logs --follow writes", () => {
  it.each([
    ["cursor position (DSR 6n)", `${ESC}[6n`],
    ["device status (DSR 5n)", `${ESC}[5n`],
    ["primary device attributes (DA1)", `${ESC}[c`],
    ["secondary device attributes (DA2)", `${ESC}[>c`],
    ["tertiary device attributes (DA3)", `${ESC}[=c`],
    ["a mode's state (DECRQM)", `${ESC}[?2004$p`],
    ["the terminal's version (XTVERSION)", `${ESC}[>0q`],
    ["kitty keyboard flags", `${ESC}[?u`],
    ["the window size in pixels (XTWINOPS 14)", `${ESC}[14t`],
    ["the text area in characters (XTWINOPS 18)", `${ESC}[18t`],
    ["a setting (DECRQSS)", `${ESC}P$qm${ESC}\\`],
    ["a capability (XTGETTCAP)", `${ESC}P+q544e${ESC}\\`],
    ["the foreground colour (OSC 10)", `${ESC}]10;?\x07`],
    ["a palette colour (OSC 4)", `${ESC}]4;1;?${ESC}\\`],
    ["the clipboard (OSC 52)", `${ESC}]52;c;?\x07`],
  ])("%s", (_what, query) => {
    expect(withoutQueries(`before${query}after`)).toBe("beforeafter");
  });

  it("leaves what only draws: colours, cursor moves, modes, titles, window resizes", () => {
    const drawing = `${ESC}[1;36mhi${ESC}[0m${ESC}[3;4H${ESC}[1C${ESC}[?1049h${ESC}[?25l${ESC}]2;title\x07${ESC}[8;24;80t${ESC}[2J${ESC}[K`;
    expect(withoutQueries(drawing)).toBe(drawing);
  });

  it("sees a query split across chunks", () => {
    const filter = new QueryFilter();
    const out = [filter.push(`one${ESC}`), filter.push("[6"), filter.push(`ntwo${ESC}]10;`), filter.push("?\x07three"), filter.end()].join("");
    expect(out).toBe("onetwothree");
  });

  it("gives back an unfinished sequence at the end of the stream", () => {
    const filter = new QueryFilter();
    expect(filter.push(`x${ESC}[3`)).toBe("x");
    expect(filter.end()).toBe(`${ESC}[3`);
  });
});
