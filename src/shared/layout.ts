/**
 * Where everything of one workspace lives under `.troupe/` (DESIGN §2, §5,
 * §6, §9), computed in one place: the supervisor, the daemon, the CLI and the
 * pty host's launcher used to compute these paths each on their own, and they
 * had drifted. Pure path computation: nothing here touches the file system.
 * Node builtins only (the CLI loads it).
 *
 * Every path here is a contract with running daemons, pty hosts and the tests:
 * never change one without a migration.
 */
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";

/** Unix socket paths are limited to 107 bytes on Linux; keep a margin. */
export const SOCKET_PATH_LIMIT = 100;

export interface WorkspaceLayout {
  /** The repository's main working tree. */
  root: string;
  troupeDir: string;
  stateDir: string;
  worktreesDir: string;
  runDir: string;
  ptyDir: string;
  logsDir: string;
  configFile: string;
  /** The supervisor's own log (pino JSON lines). */
  supervisorLogFile: string;
  /** Where the daemon listens: `run/daemon.sock`, or under the short directory when that is too long. */
  daemonSocket: string;
  /** When `daemonSocket` lies outside `runDir`, the daemon records it here for clients that compute paths differently. */
  daemonSocketRecord: string;
  daemonLogFile: string;
  /** The log of the spare pty host booted ahead of need. */
  spareHostLogFile: string;
  replHistoryFile: string;
  /** Put first on every agent's PATH: holds the `troupe` the agents call (a shim to this installation). */
  agentBinDir: string;
  worktreePath(name: string): string;
  branchName(name: string): string;
  ptySocketPath(builderId: string): string;
  exitStatusPath(builderId: string): string;
  transcriptPath(name: string, builderId: string): string;
  hostLogPath(name: string): string;
}

export function workspaceLayout(root: string): WorkspaceLayout {
  const troupeDir = join(root, ".troupe");
  const runDir = join(troupeDir, "run");
  const ptyDir = join(runDir, "pty");
  const logsDir = join(troupeDir, "logs");
  const worktreesDir = join(troupeDir, "worktrees");
  const shortDir = shortSocketDir(root);
  const socketPath = (preferred: string, file: string) => (Buffer.byteLength(preferred) <= SOCKET_PATH_LIMIT ? preferred : join(shortDir, file));
  return {
    root,
    troupeDir,
    stateDir: join(troupeDir, "state"),
    worktreesDir,
    runDir,
    ptyDir,
    logsDir,
    configFile: join(troupeDir, "config.json"),
    supervisorLogFile: join(logsDir, "troupe.log"),
    daemonSocket: socketPath(join(runDir, "daemon.sock"), "daemon.sock"),
    daemonSocketRecord: join(runDir, "daemon.sock.path"),
    daemonLogFile: join(logsDir, "daemon.log"),
    spareHostLogFile: join(logsDir, "pty-host-spare.log"),
    replHistoryFile: join(troupeDir, "repl_history"),
    agentBinDir: join(troupeDir, "bin"),
    worktreePath: (name) => join(worktreesDir, name),
    branchName: (name) => `troupe/${name}`,
    ptySocketPath: (id) => socketPath(join(ptyDir, `${id}.sock`), `${id}.sock`),
    exitStatusPath: (id) => join(ptyDir, `${id}.exit.json`),
    transcriptPath: (name, id) => join(logsDir, name, `${id}.log`),
    hostLogPath: (name) => join(logsDir, name, "pty-host.log"),
  };
}

/**
 * Where the pty host writes the text transcript (what the screen showed, as
 * text) beside the byte transcript: a trailing ".log" becomes ".txt"
 * (`logs/<name>/<id>.log` → `logs/<name>/<id>.txt`); any other path gets
 * ".txt" appended.
 */
export function textTranscriptPath(transcriptPath: string): string {
  return transcriptPath.endsWith(".log") ? `${transcriptPath.slice(0, -4)}.txt` : `${transcriptPath}.txt`;
}

/** The daemon's paths, as `daemon/workspace.ts`'s `daemonPaths` returned them. */
export interface DaemonPaths {
  troupeDir: string;
  runDir: string;
  logsDir: string;
  /** The socket the daemon listens on. */
  socket: string;
  /** When the socket lives outside `.troupe/run` (path too long), this file records where. */
  socketRecord: string;
  logFile: string;
}

export function daemonPaths(root: string): DaemonPaths {
  const layout = workspaceLayout(root);
  return { troupeDir: layout.troupeDir, runDir: layout.runDir, logsDir: layout.logsDir, socket: layout.daemonSocket, socketRecord: layout.daemonSocketRecord, logFile: layout.daemonLogFile };
}

/**
 * A short, owner-only directory for sockets whose natural path is too long,
 * keyed by a hash of the workspace: `<runtime dir>/troupe-<uid>/<hash>`.
 */
export function shortSocketDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(runtimeDir(env), `troupe-${process.getuid?.() ?? 0}`, createHash("sha256").update(root).digest("hex").slice(0, 12));
}

/**
 * `$XDG_RUNTIME_DIR` when it names an absolute directory, else the temporary
 * directory. An empty or relative value counts as unset (the XDG spec says to
 * ignore a relative one): it would put a socket relative to whatever the
 * current directory happens to be.
 */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  return xdg && isAbsolute(xdg) ? xdg : tmpdir();
}

