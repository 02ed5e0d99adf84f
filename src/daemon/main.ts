/**
 * The daemon: one per workspace (DESIGN §9). It owns the workspace's
 * Supervisor (and so its lock) and serves the CLI over a Unix socket.
 *
 *   node dist/daemon/main.js --workspace <dir>
 *
 * SIGTERM/SIGINT (or the `daemon.stop` method) close it cleanly; pty hosts,
 * and so agents, keep running for the next daemon to adopt.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { createLogger, type Logger } from "../supervisor/log.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { workspaceLayout } from "../shared/layout.js";
import { createSupervisor, type Supervisor } from "../supervisor/index.js";
import { daemonMethods } from "./methods.js";
import { PROTOCOL_VERSION, START_FAILURE_PREFIX, type DaemonStatusResult, type HelloResult } from "./protocol.js";
import { RpcServer } from "./server.js";
import { findWorkspace } from "./workspace.js";

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

function ownerOnlyDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { workspace: { type: "string" } }, strict: false });
  const start = typeof values.workspace === "string" ? values.workspace : process.cwd();
  const { root } = findWorkspace(start);
  const layout = workspaceLayout(root);
  for (const dir of [layout.troupeDir, layout.runDir, layout.logsDir, dirname(layout.daemonSocket)]) ownerOnlyDir(dir);
  if (dirname(layout.daemonSocket) !== layout.runDir) ownerOnlyDir(dirname(dirname(layout.daemonSocket)));
  const logger: Logger = createLogger({ destination: layout.daemonLogFile, base: { component: "daemon" } });
  const startedAt = new Date();
  logger.info({ workspace: root, socket: layout.daemonSocket, node: process.version, protocol: PROTOCOL_VERSION }, "daemon starting");

  let supervisor: Supervisor;
  try {
    supervisor = await createSupervisor({ workspace: root, logger, agentEnv: { TROUPE_SOCKET: layout.daemonSocket } });
  } catch (error) {
    logger.error({ err: error }, "daemon could not start");
    const failure = isTroupeError(error, "STORE_LOCKED")
      ? new TroupeError("STORE_LOCKED", `another process owns this workspace: ${error.message}`, error.details)
      : startFailure(error);
    reportStartFailure(failure);
    await flush(logger);
    return 1;
  }

  const version = packageVersion();
  const hello = (): HelloResult => ({ protocol: PROTOCOL_VERSION, version, pid: process.pid, workspace: root, socket: layout.daemonSocket, node: process.version, startedAt: startedAt.toISOString() });
  let stopping: Promise<void> | null = null;
  const methods = daemonMethods({
    supervisor,
    hello,
    status: async () => ({
      ...hello(),
      uptimeMs: Date.now() - startedAt.getTime(),
      builders: (await supervisor.status()).length,
      connections: server.connectionCount,
      logFile: layout.daemonLogFile,
      memory: memoryNow(),
    }),
    stop: () => void shutdown("daemon.stop"),
    transcriptPath: (name, id) => layout.transcriptPath(name, id),
    ptySocketPath: (id) => layout.ptySocketPath(id),
    exists: (path) => existsSync(path),
  });
  const server = new RpcServer(layout.daemonSocket, methods, logger);

  const shutdown = (why: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ why }, "daemon stopping (pty hosts keep running)");
      await server.close().catch((error) => logger.error({ err: error }, "closing the socket failed"));
      await supervisor.close().catch((error) => logger.error({ err: error }, "closing the supervisor failed"));
      removeRecord(layout.daemonSocketRecord);
      logger.info("daemon stopped");
      await flush(logger);
      process.exit(0);
    })();
    return stopping;
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => undefined);
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled rejection"));
  process.on("uncaughtException", (error) => {
    logger.fatal({ err: error }, "uncaught exception: the daemon exits (agents keep running; the next CLI call starts a new daemon)");
    void flush(logger).finally(() => process.exit(70));
  });

  try {
    await server.listen();
  } catch (error) {
    logger.error({ err: error }, "cannot listen");
    reportStartFailure(new TroupeError("LISTEN_FAILED", `cannot listen on ${layout.daemonSocket}: ${(error as Error).message}`, { socket: layout.daemonSocket }));
    await supervisor.close().catch(() => undefined);
    await flush(logger);
    return 1;
  }
  if (layout.daemonSocket.startsWith(layout.runDir)) removeRecord(layout.daemonSocketRecord);
  else writeFileSync(layout.daemonSocketRecord, `${layout.daemonSocket}\n`, { mode: 0o600 });
  logger.info({ socket: layout.daemonSocket }, "daemon ready");
  return -1; // keep running
}

/** Why the daemon cannot start, keeping the code of one of ours (the launcher reads it). */
function startFailure(error: unknown): TroupeError {
  if (isTroupeError(error)) return new TroupeError(error.code, `cannot start: ${error.message}`, error.details);
  return new TroupeError("DAEMON_START_FAILED", `cannot start: ${(error as Error)?.message ?? String(error)}`);
}

/** The structured start-failure line (see START_FAILURE_PREFIX). */
function reportStartFailure(failure: TroupeError): void {
  process.stderr.write(`${START_FAILURE_PREFIX}${JSON.stringify(failure.toJSON())}\n`);
}

function removeRecord(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // not there
  }
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 500);
    try {
      logger.flush(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error) => {
    reportStartFailure(startFailure(error));
    process.exit(1);
  },
);

function memoryNow(): DaemonStatusResult["memory"] {
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}
