/** `--cmd "<words>"`: shell-word splitting without a shell. */
import { describe, expect, it } from "vitest";
import { splitWords } from "../../src/cli/words.js";

describe("splitWords", () => {
  it.each([
    ["npm test", ["npm", "test"]],
    [`claude --print "fix the login form"`, ["claude", "--print", "fix the login form"]],
    [`echo 'single quoted' "double \\"escaped\\""`, ["echo", "single quoted", 'double "escaped"']],
    ["a\\ b c", ["a b", "c"]],
    ["  spaced   out  ", ["spaced", "out"]],
    ["echo $HOME", ["echo", "$HOME"]],
    ["ls *.ts", ["ls", "*.ts"]],
    ["run # a comment", ["run"]],
    ["", []],
  ])("%j → %j", (input, expected) => {
    expect(splitWords(input)).toEqual(expected);
  });

  it.each(["a | b", "a && b", "a; b", "a > out", "a < in", "a &"])("refuses %j (it needs a shell)", (input) => {
    expect(() => splitWords(input)).toThrow(/needs a shell/);
  });
});
