/**
 * `troupe`: the thin client (DESIGN §9). It parses arguments, calls the
 * workspace's daemon and prints. It never loads sql.js, node-pty, xstate,
 * pino or execa: command modules are imported lazily and use node builtins,
 * src/client, src/term and small pure modules only.
 */
import { UsageError, isTroupeError } from "../shared/errors.js";

export interface CommandModule {
  usage: string;
  run(argv: string[], command: string): Promise<number>;
}

const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  init: { summary: "set up .troupe/ in this repository", load: () => import("./commands/init.js") },
  daemon: { summary: "start, stop or inspect the workspace daemon", load: () => import("./commands/daemon.js") },
  spawn: { summary: "start a builder in its own worktree and terminal", load: () => import("./commands/spawn.js") },
  status: { summary: "the builders, as a tree", load: () => import("./commands/status.js") },
  send: { summary: "send mail to a builder, the operator or an address", load: () => import("./commands/send.js") },
  mail: { summary: "list an inbox", load: () => import("./commands/mail.js") },
  attach: { summary: "connect this terminal to a builder's terminal", load: () => import("./commands/attach.js") },
  screen: { summary: "what a builder's terminal shows now, as text", load: () => import("./commands/screen.js") },
  logs: { summary: "print (or follow) what a builder's terminal showed", load: () => import("./commands/logs.js") },
  stop: { summary: "stop a builder's agent (working → completed)", load: () => import("./commands/lifecycle.js") },
  restart: { summary: "start a builder's agent again in its worktree", load: () => import("./commands/lifecycle.js") },
  destroy: { summary: "tear a builder down (its row stays as a tombstone)", load: () => import("./commands/lifecycle.js") },
  adopt: { summary: "register live pty hosts that no builder owns", load: () => import("./commands/maintenance.js") },
  doctor: { summary: "check the workspace against the store (--fix repairs)", load: () => import("./commands/maintenance.js") },
  gc: { summary: "prune old tombstones", load: () => import("./commands/maintenance.js") },
  demo: { summary: "watch a lead and two builders work, in a throwaway repository", load: () => import("./commands/demo.js") },
  repl: { summary: "interactive inspector of the actor tree", load: () => import("./commands/repl.js") },
  viz: { summary: "live statechart visualizer in the browser", load: () => import("./commands/viz.js") },
  chart: { summary: "export the builder statechart (mermaid, dot, json, svg)", load: () => import("./commands/chart.js") },
};

function globalUsage(): string {
  const names = Object.keys(COMMANDS);
  const longest = Math.max(...names.map((name) => name.length));
  return [
    "Usage: troupe <command> [options]",
    "",
    "A supervisor for AI coding agents: each builder runs in its own git worktree and terminal.",
    "",
    "Commands:",
    ...names.map((name) => `  ${name.padEnd(longest)}  ${COMMANDS[name]!.summary}`),
    "",
    "Every command accepts --json and --help. Exit status: 0 ok, 1 failure, 2 usage.",
    "Run `troupe demo` to see it work without any AI agent installed.",
  ].join("\n");
}

async function version(): Promise<string> {
  // Read lazily: only `--version` pays for it.
  const { readFileSync } = await import("node:fs");
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  // `troupe status | head`: a reader that goes away is not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  });
  const [command, ...rest] = argv;
  const json = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : argv.length).includes("--json");
  try {
    if (command === undefined || command === "--help" || command === "-h" || command === "help") {
      const topic = command === "help" ? rest[0] : undefined;
      if (topic && COMMANDS[topic]) {
        process.stdout.write(`${(await COMMANDS[topic]!.load()).usage.replaceAll("$0", topic)}\n`);
        return 0;
      }
      if (command === undefined) {
        process.stderr.write(`${globalUsage()}\n`);
        return 2;
      }
      process.stdout.write(`${globalUsage()}\n`);
      return 0;
    }
    if (command === "--version" || command === "-v") {
      process.stdout.write(`${await version()}\n`);
      return 0;
    }
    const entry = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!entry) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const module = await entry.load();
    const beforeDashes = rest.slice(0, rest.includes("--") ? rest.indexOf("--") : rest.length);
    if (beforeDashes.includes("--help") || beforeDashes.includes("-h")) {
      process.stdout.write(`${module.usage.replaceAll("$0", command)}\n`);
      return 0;
    }
    return await module.run(rest, command);
  } catch (error) {
    return report(error, json, command);
  }
}

function report(error: unknown, json: boolean, command: string | undefined): number {
  const troupe = isTroupeError(error) ? error : null;
  const code = troupe?.code ?? "INTERNAL";
  const message = troupe?.message ?? (error instanceof Error ? error.message : String(error));
  const details = troupe?.details ?? {};
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message, details } }, null, 2)}\n`);
  process.stderr.write(`troupe: ${message}\n`);
  if (troupe?.exitCode === 2) {
    process.stderr.write(command && COMMANDS[command] ? `Run \`troupe ${command} --help\` for its usage.\n` : "Run `troupe --help` for the commands.\n");
  } else if (!troupe && process.env.TROUPE_DEBUG) {
    process.stderr.write(`${(error as Error)?.stack ?? ""}\n`);
  }
  return troupe?.exitCode ?? 1;
}
