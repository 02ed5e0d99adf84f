/**
 * Finding the workspace's daemon (DESIGN §9): the socket of the main working
 * tree's `.troupe/`, or TROUPE_SOCKET inside an agent; a daemon is started
 * when none answers (unless asked not to). Node builtins only.
 */
import { readFileSync } from "node:fs";
import type { Auth } from "../shared/contract.js";
import { TroupeError } from "../shared/errors.js";
import { startDaemon, type LaunchOptions } from "../daemon/launch.js";
import { daemonPaths } from "../shared/layout.js";
import { findWorkspace, type WorkspaceInfo } from "../daemon/workspace.js";
import { DaemonClient } from "./rpc.js";

let cachedWorkspace: WorkspaceInfo | null = null;

/** The workspace of the current directory (found once per process). */
export function workspace(): WorkspaceInfo {
  cachedWorkspace ??= findWorkspace(process.cwd());
  return cachedWorkspace;
}

/** Where the workspace's daemon listens (recorded by the daemon when the natural path is too long). */
export function socketPathOf(root: string): string {
  const paths = daemonPaths(root);
  if (!paths.socket.startsWith(paths.runDir)) {
    try {
      const recorded = readFileSync(paths.socketRecord, "utf8").trim();
      if (recorded) return recorded;
    } catch {
      // not recorded yet: the computed path is where a new daemon will listen
    }
  }
  return paths.socket;
}

/** Nobody listens there (yet): a daemon may be started. */
function isAbsent(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "ENOTSOCK" || code === "ECONNRESET";
}

async function tryConnect(socketPath: string): Promise<DaemonClient | null> {
  try {
    return await DaemonClient.connect(socketPath);
  } catch (error) {
    if (isAbsent(error)) return null;
    throw new TroupeError("DAEMON_UNREACHABLE", `cannot reach the daemon at ${socketPath}: ${(error as Error).message}`, { socket: socketPath });
  }
}

/** A connection with the hello exchanged (closed again if the hello fails). */
async function handshake(client: DaemonClient): Promise<DaemonClient> {
  try {
    await client.handshake();
    return client;
  } catch (error) {
    client.close();
    throw error;
  }
}

export interface ConnectOptions extends LaunchOptions {
  /** A directory inside the repository (default: the current directory, or TROUPE_SOCKET when set). */
  workspace?: string;
  /** Start the daemon when none runs (default true). */
  autostart?: boolean;
}

/**
 * A client of the workspace's daemon, with the hello exchanged. An agent
 * (TROUPE_SOCKET set) reaches its daemon without looking for the workspace.
 */
export async function connectDaemon(options: ConnectOptions = {}): Promise<DaemonClient> {
  const fromEnv = options.workspace === undefined ? process.env.TROUPE_SOCKET : undefined;
  if (fromEnv) {
    const client = await tryConnect(fromEnv);
    if (client) return handshake(client);
  }
  const root = options.workspace === undefined ? workspace().root : findWorkspace(options.workspace).root;
  const socketPath = socketPathOf(root);
  if (socketPath !== fromEnv) {
    const client = await tryConnect(socketPath);
    if (client) return handshake(client);
  }
  if (options.autostart === false) throw new TroupeError("DAEMON_NOT_RUNNING", `no daemon is running for ${root} (\`troupe daemon start\` starts one)`, { workspace: root });
  return launchDaemon(root, options);
}

/** Starts a daemon for `root` and connects to it. */
export async function launchDaemon(root: string, options: LaunchOptions = {}): Promise<DaemonClient> {
  const client = await startDaemon(root, options, tryConnect);
  return handshake(client);
}

/** Runs `fn` with a connected client and closes it afterwards. */
export async function withDaemon<T>(fn: (client: DaemonClient) => Promise<T>, options: ConnectOptions = {}): Promise<T> {
  const client = await connectDaemon(options);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** An agent's identity for the daemon (DESIGN §8): the token from its environment. */
export function agentAuth(): { auth?: Required<Auth> } {
  const token = process.env.TROUPE_TOKEN;
  return token ? { auth: { token } } : {};
}
