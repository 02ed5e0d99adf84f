import { runRepl } from "../../repl/index.js";
import { UsageError } from "../../shared/errors.js";
import { parse } from "../args.js";

export const usage = `Usage: troupe repl

An interactive inspector of the builder tree, on the workspace's daemon
(started if none runs). A JavaScript REPL with top-level await, where
\`troupe\` is the connected client (\`await troupe.status()\`), and:

  .tree [--all]          the builders as a tree with their states
  .builder <name>        a builder's status object
  .history <name>        its transitions: time, from → to, event
  .mail [<name>]         an inbox (yours by default)
  .watch [<name>]        print transitions and mail as they happen; .unwatch stops
  .doctor [--fix]        compare the store with the world
  .help                  all of them, and the helpers in scope: tree(), builder(name),
                         history(name), mail(name?), send(to, body, opts?),
                         watch(name?), unwatch(), doctor()

Tab completes builder names. Daemon errors print as \`error CODE: message\`.
.exit or Ctrl-D leaves; the daemon and its builders keep running.
The input history is kept in .troupe/repl_history.

Options:
  -h, --help
(--json does not apply: the REPL is interactive; use \`troupe status --json\`.)`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, {}, usage, { min: 0, max: 0 });
  if (args.json) throw new UsageError("--json does not apply to the interactive repl (try `troupe status --json`, or `await troupe.status()` inside the repl)", usage);
  return runRepl();
}
