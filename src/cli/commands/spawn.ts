import { withDaemon } from "../../client/discovery.js";
import type { SpawnOptions } from "../../shared/contract.js";
import { UsageError } from "../../shared/errors.js";
import { PTY_MODES, RESTART_TYPES } from "../../shared/vocabulary.js";
import { paint } from "../../term/paint.js";
import { checkChoice, checkName, checkRole, parse, str } from "../args.js";
import { print, printJson } from "../output.js";
import { splitWords } from "../words.js";
import { parseDuration } from "../../shared/duration.js";

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
  --env KEY=VALUE       set a variable for the agent (repeatable); --env KEY passes this shell's value
  --stall <duration>    silence (no output) after which the agent counts as stalled, e.g. 5m
  --zombie <duration>   silence after which a stalled agent is killed (a zombie), e.g. 15m
  --max-restarts <n>    automatic restarts allowed within the restart period (default 3)

The agent gets this shell's PATH, TERM and LANG (its command is found on that
PATH), the variables named with --env, and troupe itself on its PATH.
  --json                print the builder object
  -h, --help`;

/** The variables of the spawning shell an agent gets without asking (DESIGN §5a). */
const SHELL_WORLD = ["PATH", "TERM", "LANG"] as const;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
      env: { type: "string", multiple: true },
      stall: { type: "string" },
      zombie: { type: "string" },
      "max-restarts": { type: "string" },
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
    env: shellWorld(v.env as string[] | undefined),
    ...policyOf(v),
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

/** What the agent should find of this shell: PATH, TERM and LANG, and every variable named with --env. */
function shellWorld(given: string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of SHELL_WORLD) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  for (const entry of given) {
    const at = entry.indexOf("=");
    const key = at === -1 ? entry : entry.slice(0, at);
    if (!ENV_NAME.test(key)) throw new UsageError(`--env ${JSON.stringify(entry)}: use KEY=VALUE, or KEY to pass this shell's value (KEY: letters, digits, _; not starting with a digit)`);
    if (key.startsWith("TROUPE_")) throw new UsageError(`--env ${key}: TROUPE_* variables are set by troupe itself`);
    if (at !== -1) env[key] = entry.slice(at + 1);
    else if (process.env[key] !== undefined) env[key] = process.env[key]!;
    else throw new UsageError(`--env ${key}: ${key} is not set in this shell; give a value with --env ${key}=VALUE`);
  }
  return env;
}

function policyOf(v: Record<string, unknown>): Pick<SpawnOptions, "policy"> {
  const policy: NonNullable<SpawnOptions["policy"]> = {};
  const duration = (flag: string, value: unknown): number => {
    const ms = parseDuration(String(value));
    if (ms === null || ms <= 0) throw new UsageError(`--${flag} ${JSON.stringify(value)}: give a duration such as 90s, 15m or 1h30m`);
    return ms;
  };
  if (v.stall !== undefined) policy.stallMs = duration("stall", v.stall);
  if (v.zombie !== undefined) policy.zombieMs = duration("zombie", v.zombie);
  if (v["max-restarts"] !== undefined) {
    const n = Number(v["max-restarts"]);
    if (!/^\d+$/.test(String(v["max-restarts"])) || !Number.isSafeInteger(n)) throw new UsageError(`--max-restarts ${JSON.stringify(v["max-restarts"])}: give a whole number ≥ 0`);
    policy.maxRestarts = n;
  }
  return Object.keys(policy).length > 0 ? { policy } : {};
}
