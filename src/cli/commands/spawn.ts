import { withDaemon } from "../../client/discovery.js";
import type { SpawnOptions } from "../../shared/contract.js";
import { UsageError } from "../../shared/errors.js";
import { PTY_MODES, RESTART_TYPES } from "../../shared/vocabulary.js";
import { paint } from "../../term/paint.js";
import { checkChoice, checkName, checkRole, parse, str } from "../args.js";
import { print, printJson } from "../output.js";
import { splitWords } from "../words.js";

export const usage = `Usage: troupe spawn <name> [--agent <profile> | -- <command> [args…] | --cmd "<words>" | --shell "<script>"] [options]

Starts a builder: a git worktree (.troupe/worktrees/<name>, branch troupe/<name>)
and a terminal running the agent. Returns once the builder is working.

The command after -- is an argv: no shell runs it. --cmd "<words>" is split by
shell-word rules (quotes, backslashes), still without a shell. Only --shell
runs a shell, because you asked: /bin/sh -c "<script>".

Options:
  --agent <profile>     an agent profile (claude, codex, aider, shell, or .troupe/config.json)
  --cmd "<words>"       the command as one string, split into words
  --shell "<script>"    run the script with /bin/sh -c (pipes, &&, $VARS work)
  --task <text>         the task given to the agent
  --parent <name>       supervise it under this builder
  --role <role>         a role (mail can be sent to @role:<role>)
  --restart <type>      permanent | transient (default) | temporary
  --pty <mode>          auto (default) | on | off
  --base <ref>          the branch point (default HEAD)
  --replace             tear down a live builder of the same name first
  --json                print the builder object
  -h, --help`;

const WAYS = '--agent <profile>, -- <command> [args…], --cmd "<words>", or --shell "<script>"';

export async function run(argv: string[]): Promise<number> {
  const dashes = argv.indexOf("--");
  const own = dashes === -1 ? argv : argv.slice(0, dashes);
  const command = dashes === -1 ? undefined : argv.slice(dashes + 1);
  const args = parse(
    own,
    {
      agent: { type: "string" },
      cmd: { type: "string" },
      shell: { type: "string" },
      task: { type: "string" },
      parent: { type: "string" },
      role: { type: "string" },
      restart: { type: "string" },
      pty: { type: "string" },
      base: { type: "string" },
      replace: { type: "boolean" },
    },
    usage,
    { min: 1, max: 1, names: ["name"] },
  );
  const name = checkName(args.positionals[0]!);
  const v = args.values;
  const cmdWords = str(v.cmd);
  const agent = str(v.agent);
  const script = str(v.shell);
  const given = [agent !== undefined, cmdWords !== undefined, command !== undefined, script !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError(`give the agent one way: ${WAYS}`);
  if (command !== undefined && command.length === 0) throw new UsageError("missing <command> after --");
  let cmd = command;
  if (cmdWords !== undefined) {
    cmd = splitWords(cmdWords);
    if (cmd.length === 0) throw new UsageError("--cmd is empty");
  }
  if (script !== undefined) {
    if (script.trim() === "") throw new UsageError("--shell is empty");
    cmd = ["/bin/sh", "-c", script];
  }
  if (cmd === undefined && agent === undefined) throw new UsageError(`missing the agent: ${WAYS}`);
  const parent = str(v.parent);
  const role = str(v.role);
  const options: SpawnOptions = {
    name,
    ...(cmd ? { cmd } : {}),
    ...(agent !== undefined ? { agent } : {}),
    ...(str(v.task) !== undefined ? { task: str(v.task) } : {}),
    ...(parent !== undefined ? { parent: checkName(parent, "parent name") } : {}),
    ...(role !== undefined ? { role: checkRole(role) } : {}),
    ...(v.restart !== undefined ? { restart: checkChoice(str(v.restart), "restart", RESTART_TYPES) } : {}),
    ...(v.pty !== undefined ? { pty: checkChoice(str(v.pty), "pty", PTY_MODES) } : {}),
    ...(str(v.base) !== undefined ? { base: str(v.base) } : {}),
    ...(v.replace === true ? { replace: true } : {}),
  };
  const builder = await withDaemon((client) => client.call("spawn", options));
  if (args.json) {
    printJson(builder);
  } else {
    const p = paint();
    print(`${p.green("spawned")} ${p.bold(builder.name)} (${builder.state}${builder.substate ? `.${builder.substate}` : ""}, pid ${builder.pid ?? "-"}${builder.pty === false ? ", no pty: pipes" : ""})`);
    print(`  worktree ${builder.worktree ?? "-"}  branch ${builder.branch ?? "-"}`);
    print(`  attach with \`troupe attach ${builder.name}\`, follow with \`troupe logs ${builder.name} --follow\``);
  }
  return 0;
}
