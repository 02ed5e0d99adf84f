/**
 * Tab completion of builder names: after the dot-commands that take one
 * (`.builder al<Tab>`) and inside the first string argument of the helpers
 * and client methods that take one (`history("al<Tab>`). Anything else goes
 * to node:repl's own completer (JavaScript, dot-command names).
 */

/** Dot-commands whose argument is a builder name. */
export const NAME_COMMANDS = ["builder", "history", "mail", "watch"] as const;

const DOT_COMMAND = new RegExp(`^\\s*\\.(?:${NAME_COMMANDS.join("|")})\\s+([a-z0-9._-]*)$`);
const CALL = /(?:^|[^\w$.])(?:builder|history|mail|watch|send|troupe\s*\.\s*(?:get|history|stop|restart|destroy))\s*\(\s*(["'`])([a-z0-9._-]*)$/;

/** The partial builder name at the end of `line` when a name belongs there, else null. */
export function namePrefix(line: string): string | null {
  const dot = DOT_COMMAND.exec(line);
  if (dot) return dot[1]!;
  const call = CALL.exec(line);
  if (call) return call[2]!;
  return null;
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
