import { agentAuth, withDaemon } from "../../client/discovery.js";
import type { SendRequest } from "../../shared/contract.js";
import { UsageError } from "../../shared/errors.js";
import { PRIORITIES } from "../../shared/vocabulary.js";
import { paint } from "../../term/paint.js";
import { checkChoice, parse, str } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe send <to> <body> [--type <type>] [--subject <text>] [--priority <p>] [--from <name>]

Sends mail. <to> is a builder name, operator, parent, @children, @all or
@role:<role>. A body of "-" is read from standard input.

Inside an agent (TROUPE_TOKEN set) the sender is the agent itself; only the
operator may set --from.

Options:
  --type <type>        status, question, result (default status), error, dispatch,
                       escalation, worker_done, worker_died, or x-<custom>
  --subject <text>
  --priority <p>       low | normal (default) | high | urgent
  --from <name>        send as this builder (operator only)
  --json               print the stored message(s)
  -h, --help`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function run(argv: string[]): Promise<number> {
  const args = parse(
    argv,
    { type: { type: "string" }, subject: { type: "string" }, priority: { type: "string" }, from: { type: "string" } },
    usage,
    { min: 2, max: 2, names: ["to", "body"] },
  );
  const [to, rawBody] = args.positionals as [string, string];
  if (to.length === 0) throw new UsageError("<to> is empty");
  const v = args.values;
  const type = str(v.type);
  if (type !== undefined && !/^[a-z][a-z0-9_-]{0,63}$/.test(type)) throw new UsageError(`--type ${JSON.stringify(type)}: use a known type or x-<name>`);
  const priority = checkChoice(str(v.priority), "priority", PRIORITIES);
  const body = rawBody === "-" ? await readStdin() : rawBody;
  const request: SendRequest = {
    to,
    body,
    ...(type !== undefined ? { type } : {}),
    ...(str(v.subject) !== undefined ? { subject: str(v.subject) } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(str(v.from) !== undefined ? { from: str(v.from) } : {}),
  };
  const sent = await withDaemon((client) => client.call("send", { ...request, ...agentAuth() }));
  if (args.json) {
    printJson(sent);
  } else {
    const p = paint();
    for (const m of sent) print(`${p.green("sent")} ${m.type} ${p.dim(m.id)} ${m.from} → ${p.bold(m.to)}`);
  }
  return 0;
}
