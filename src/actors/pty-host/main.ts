/**
 * The pty host (DESIGN §5): one small detached process per builder that owns
 * the agent's terminal and outlives any supervisor.
 *
 *   node dist/actors/pty-host/main.js [--socket <path>] [--spare-for <run dir>]
 *
 * The spec (a PtyHostSpec as JSON) is read from standard input (the flags only
 * make the process recognisable in `ps` until it knows its builder). When the
 * agent runs and the socket listens, one JSON line (a ReadyMessage) goes to
 * fd 3, which is then closed: after that the host never writes to its
 * launcher again.
 *
 * Budget: ≤ 56 MB RSS with the screen emulator (xterm.js, loaded with host.ts;
 * node-pty lazily).
 */
import { mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { loadPty } from "./agent.js";
import { failureReport } from "./failure.js";
import { errorText, readSpecText, sendReady, validateSpec } from "./host-io.js";
import { hostTitle } from "./protocol.js";
import { configureHostLog, hostLog } from "./host-log.js";
import { PtyHost } from "./host.js";

async function main(): Promise<void> {
  // The launcher may die or close its terminal: neither may take the agent with it.
  process.on("SIGHUP", () => hostLog("info", "ignored SIGHUP"));
  let host: PtyHost | null = null;
  process.on("uncaughtException", (error) => hostLog("error", "uncaught exception", { err: errorText(error), stack: error.stack }));
  process.on("unhandledRejection", (error) => hostLog("error", "unhandled rejection", { err: errorText(error) }));
  try {
    // A spare loads node-pty (a few ms) before it waits, not after its work arrived.
    if (process.argv.includes("--spare-for")) loadPty();
    const text = readSpecText();
    // A spare host (booted ahead of need) whose owner went away before giving it work.
    if (text === "" && process.argv.includes("--spare-for")) process.exit(0);
    const spec = validateSpec(JSON.parse(text));
    // `ps` names the builder. A host launched for it got that name as argv[0] (its other
    // arguments stay readable); a spare learns it only now, and the title replaces its whole argv.
    if (process.argv.includes("--spare-for")) process.title = hostTitle(spec);
    mkdirSync(dirname(spec.logPath), { recursive: true, mode: 0o700 });
    configureHostLog({ fd: openSync(spec.logPath, "a", 0o600) });
    configureHostLog({ context: { builderId: spec.builderId, name: spec.name } });
    host = new PtyHost(spec);
    const started = host;
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => void started.terminate(signal));
    const ready = await host.start();
    sendReady(ready);
  } catch (error) {
    const failure = failureReport(error);
    hostLog("error", "start failed", { code: failure.error.code, err: failure.error.message });
    host?.abortStart();
    sendReady(failure);
    process.exit(1);
  }
}

void main();
