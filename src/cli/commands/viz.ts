import { spawn } from "node:child_process";
import { connectDaemon, workspace } from "../../client/discovery.js";
import { UsageError } from "../../shared/errors.js";
import { startVizServer, type VizServer } from "../../viz/server.js";
import { parse, str } from "../args.js";
import { note, print } from "../output.js";

export const usage = `Usage: troupe viz [--port <n>] [--no-open]

A live statechart visualizer in the browser, offline: the builder statechart
(laid out by Graphviz), the builders as a tree, each one's state marked on the
chart as it changes, and a builder's history when you click it.

It serves 127.0.0.1 only, and only to URLs carrying the random token it prints
(and only under the Host 127.0.0.1 or localhost). It runs until Ctrl-C.

Options:
  -p, --port <n>   port to listen on (default 0: any free port)
  --no-open        do not open a browser, only print the URL
  --json           print { url, port, pid } as one JSON line
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { port: { type: "string", short: "p" }, "no-open": { type: "boolean" } }, usage, { min: 0, max: 0 });
  const portText = str(args.values.port) ?? "0";
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`--port must be a whole number from 0 to 65535 (got ${JSON.stringify(portText)})`, usage);
  const root = workspace().root;

  const server: VizServer = await startVizServer({
    port: Number(portText),
    workspace: root,
    // The first connection starts the daemon like any command; after the daemon went
    // away the visualizer only reconnects (a stopped daemon stays stopped).
    connect: (attempt) => connectDaemon(attempt === "first" ? {} : { autostart: false }),
  });

  if (args.json) process.stdout.write(`${JSON.stringify({ url: server.url, port: server.port, pid: process.pid })}\n`);
  else print(`troupe viz: ${server.url}\n(serving 127.0.0.1 only; Ctrl-C stops it)`);
  if (args.values["no-open"] !== true) openBrowser(server.url);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      for (const signal of STOP_SIGNALS) process.off(signal, stop);
      void server.close().then(() => resolve(0));
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
  });
}

/** Ctrl-C, a kill, or the terminal going away: close the server and exit 0. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Best effort: the platform's opener, detached; a failure only says so. */
function openBrowser(url: string): void {
  const [command, args] =
    process.platform === "darwin" ? ["open", [url]] : process.platform === "win32" ? ["cmd", ["/c", "start", "", url]] : ["xdg-open", [url]];
  try {
    const child = spawn(command, args, { detached: true, stdio: "ignore" });
    child.on("error", () => note(`troupe viz: could not open a browser (${command}); open the URL above yourself`));
    child.unref();
  } catch {
    note(`troupe viz: could not open a browser; open the URL above yourself`);
  }
}
