import { withDaemon } from "../../client/discovery.js";
import { builderTree } from "../../term/builders.js";
import { parse } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe status [--all] [--json]

The builders of this workspace as a tree (children under their parents):
state.substate, agent pid, restarts, branch.

Options:
  --all    include destroyed builders (tombstones)
  --json   print the array of builder objects
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { all: { type: "boolean" } }, usage, { min: 0, max: 0 });
  const builders = await withDaemon((client) => client.call("status", { all: args.values.all === true }));
  if (args.json) printJson(builders);
  else print(builderTree(builders));
  return 0;
}
