/**
 * `--cmd "<words>"`: split by shell-word rules (quotes, escapes) with
 * shell-quote's parser, never run by a shell. Anything only a shell could do
 * (pipes, redirections, `;`, `&&`) is refused rather than passed on as a
 * literal; `$VAR` and globs stay literal (no expansion happens without a shell).
 */
import { parse } from "shell-quote";
import { UsageError } from "../shared/errors.js";

export function splitWords(text: string): string[] {
  const words: string[] = [];
  for (const token of parse(text, (key) => `$${key}`)) {
    if (typeof token === "string") {
      words.push(token);
      continue;
    }
    if ("comment" in token) break;
    if ("op" in token && token.op === "glob") {
      words.push((token as { pattern: string }).pattern);
      continue;
    }
    const op = "op" in token ? String(token.op) : JSON.stringify(token);
    throw new UsageError(`--cmd ${JSON.stringify(text)}: "${op}" needs a shell, and troupe runs no shell; use --shell '<script>' if you mean one`);
  }
  return words;
}
