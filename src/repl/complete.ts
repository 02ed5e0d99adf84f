/**
 * Tab completion of builder names: after the dot-commands that take one
 * (`.builder al<Tab>`) and inside the first string argument of the helpers
 * and client methods that take one (`history("al<Tab>`). Anything else goes
 * to node:repl's own completer (JavaScript, dot-command names).
 */
import type { ReplCommand } from "./commands.js";

/** Client methods whose first argument is a builder name. */
const CLIENT_METHODS = ["get", "history", "stop", "restart", "destroy"];

/**
 * The partial builder name at the end of a line when a name belongs there
 * (else null), for the commands that take one: `.builder al`, `history("al`.
 */
export function nameCompletion(commands: readonly ReplCommand[]): (line: string) => string | null {
  const named = commands.filter((c) => c.takesName);
  const dot = new RegExp(`^\\s*\\.(?:${named.filter((c) => c.dot).map((c) => c.name).join("|")})\\s+([a-z0-9._-]*)$`);
  const call = new RegExp(`(?:^|[^\\w$.])(?:${named.filter((c) => c.helper).map((c) => c.name).join("|")}|troupe\\s*\\.\\s*(?:${CLIENT_METHODS.join("|")}))\\s*\\(\\s*(["'\`])([a-z0-9._-]*)$`);
  return (line) => dot.exec(line)?.[1] ?? call.exec(line)?.[2] ?? null;
}

/** node:repl's completion result for `prefix` among `names`. */
export function completeName(prefix: string, names: readonly string[]): [string[], string] {
  return [names.filter((name) => name.startsWith(prefix)).sort(), prefix];
}

/** Remembers the builder names for a moment, so that Tab after Tab does not ask the daemon each time. */
export class NameCache {
  private names: string[] = [];
  private fetchedAt = 0;

  constructor(
    private readonly fetch: () => Promise<string[]>,
    private readonly ttlMs = 2000,
  ) {}

  async get(): Promise<string[]> {
    if (Date.now() - this.fetchedAt > this.ttlMs) {
      try {
        this.names = await this.fetch();
        this.fetchedAt = Date.now();
      } catch {
        // no daemon: complete nothing rather than print an error in the middle of a line
      }
    }
    return this.names;
  }
}
