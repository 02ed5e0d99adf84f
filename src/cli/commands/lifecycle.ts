import { withDaemon } from "../../client/discovery.js";
import { stateLabel } from "../../term/builders.js";
import { paint } from "../../term/paint.js";
import { checkName, parse } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe stop <name>
       troupe restart <name>
       troupe destroy <name> [--force]

stop      stops the builder's agent gracefully (SIGTERM, then SIGKILL): working → completed
restart   starts the agent again in the same worktree (a working one is stopped first)
destroy   tears the builder down (agent, pty host, worktree, branch); its row stays as a
          tombstone. Refused when the worktree has uncommitted changes or the branch has
          commits not in its base, unless --force.

Options:
  --force    (destroy) throw away uncommitted changes and unmerged commits
  --json     print the builder object
  -h, --help`;

export async function run(argv: string[], command: string): Promise<number> {
  const args = parse(argv, command === "destroy" ? { force: { type: "boolean" } } : {}, usage.replaceAll("$0", command), { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  const builder = await withDaemon((client) =>
    command === "destroy" ? client.call("destroy", { name, ...(args.values.force === true ? { force: true } : {}) }) : client.call(command === "stop" ? "stop" : "restart", { name }),
  );
  if (args.json) {
    printJson(builder);
  } else {
    const p = paint();
    const verb = command === "stop" ? "stopped" : command === "restart" ? "restarted" : "destroyed";
    print(`${verb} ${p.bold(builder.name)}: ${stateLabel(builder, p)}${builder.pid ? ` (pid ${builder.pid})` : ""}`);
  }
  return 0;
}
