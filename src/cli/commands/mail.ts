import { agentAuth, withDaemon } from "../../client/discovery.js";
import { mailList } from "../../term/mail.js";
import { parse } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe mail [<name>] [--unread]

Lists an inbox, oldest first: the builder <name>'s, or by default your own
(the operator's; inside an agent, the agent's).

Options:
  --unread   only messages not read yet
  --json     print the array of messages
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { unread: { type: "boolean" } }, usage, { min: 0, max: 1, names: ["name"] });
  const name = args.positionals[0];
  const rows = await withDaemon((client) => client.call("mail", { ...(name !== undefined ? { name } : {}), ...(args.values.unread === true ? { unread: true } : {}), ...agentAuth() }));
  if (args.json) printJson(rows);
  else print(mailList(rows));
  return 0;
}
