import { withDaemon } from "../../client/discovery.js";
import { screenText } from "../../term/screen.js";
import { checkName, parse } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe screen <name> [--json]

Prints what the builder's terminal shows now, as plain text (no escape
sequences): one line per row of the screen, as the agent drew it. For people,
scripts and other agents; \`troupe attach\` shows it live.

Options:
  --json   print { name, id, cols, rows, lines, cursor: { x, y, visible }, title, alternate }
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, {}, usage, { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  const screen = await withDaemon((client) => client.call("screen", { name }));
  if (args.json) printJson(screen);
  else print(screenText(screen.lines));
  return 0;
}
