import { connectDaemon, launchDaemon, socketPathOf, workspace } from "../../client/discovery.js";
import type { DaemonClient } from "../../client/rpc.js";
import { UsageError, isTroupeError } from "../../shared/errors.js";
import { isProcessAlive } from "../../shared/proc.js";
import { paint, time } from "../../term/paint.js";
import { parse, str } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe daemon start [--node <path>]
       troupe daemon stop
       troupe daemon status

One daemon per workspace owns its builders; other commands start it when it
is not running. Stopping it leaves every agent running: the next daemon
adopts them.

Options:
  --node <path>   (start) the Node binary to run the daemon with
                  (default $TROUPE_DAEMON_NODE, else the CLI's own)
  --json          print the daemon's details
  -h, --help

Exit status of status: 0 when a daemon runs, 1 when none does.`;

const ACTIONS = ["start", "stop", "status"];

async function existing(): Promise<DaemonClient | null> {
  try {
    return await connectDaemon({ autostart: false });
  } catch (error) {
    if (isTroupeError(error, "DAEMON_NOT_RUNNING")) return null;
    throw error;
  }
}

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { node: { type: "string" } }, usage, { min: 1, max: 1, names: ["start|stop|status"] });
  const action = args.positionals[0]!;
  if (!ACTIONS.includes(action)) throw new UsageError(`unknown daemon action ${JSON.stringify(action)}: use start, stop or status`);
  if (args.values.node !== undefined && action !== "start") throw new UsageError("--node goes with `troupe daemon start`");
  const p = paint();
  if (action === "start") {
    let client = await existing();
    const started = client === null;
    client ??= await launchDaemon(workspace().root, { node: str(args.values.node), announce: false });
    const hello = client.hello!;
    client.close();
    if (args.json) printJson({ running: true, started, ...hello });
    else print(`${started ? "started the daemon" : "the daemon is already running"} (pid ${hello.pid}, node ${hello.node}) for ${hello.workspace}`);
    return 0;
  }
  if (action === "stop") {
    const client = await existing();
    if (!client) {
      if (args.json) printJson({ running: false, stopped: false });
      else print("no daemon is running");
      return 0;
    }
    const hello = client.hello!;
    await client.call("daemon.stop").catch(() => undefined);
    client.close();
    const how = await waitForExit(hello.pid);
    if (args.json) printJson({ running: false, stopped: true, pid: hello.pid, how });
    else print(`stopped the daemon (pid ${hello.pid})${how === "clean" ? "" : ` with ${how}`}; agents keep running`);
    return 0;
  }
  const client = await existing();
  if (!client) {
    const root = workspace().root;
    if (args.json) printJson({ running: false, workspace: root, socket: socketPathOf(root) });
    else print(`no daemon is running for ${root}`);
    return 1;
  }
  const status = await client.call("daemon.status");
  client.close();
  if (args.json) {
    printJson({ running: true, ...status });
  } else {
    print(`${p.green("running")}  pid ${status.pid}  node ${status.node}  protocol ${status.protocol}  version ${status.version}`);
    print(`  workspace  ${status.workspace}`);
    print(`  socket     ${status.socket}`);
    print(`  log        ${status.logFile}`);
    print(`  since      ${time(status.startedAt)} (${Math.round(status.uptimeMs / 1000)} s)  builders ${status.builders}  connections ${status.connections}`);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    print(`  memory     rss ${mib(status.memory.rss)}  heap ${mib(status.memory.heapUsed)} of ${mib(status.memory.heapTotal)}  external ${mib(status.memory.external)}`);
  }
  return 0;
}

/** Waits for the daemon to exit; escalates to SIGTERM, then SIGKILL, when it does not. */
async function waitForExit(pid: number): Promise<"clean" | "SIGTERM" | "SIGKILL"> {
  const wait = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!isProcessAlive(pid)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return !isProcessAlive(pid);
  };
  if (await wait(20_000)) return "clean";
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return "clean";
  }
  if (await wait(5_000)) return "SIGTERM";
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
  await wait(5_000);
  return "SIGKILL";
}
