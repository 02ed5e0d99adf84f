import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { connectPtyHost, listBranches, listWorktrees, type HostIdentity } from "../actors/index.js";
import { isProcessAlive, parentPid } from "../shared/proc.js";
import type { WorkspaceLayout } from "../shared/layout.js";

/**
 * What is really there for one workspace, looked at independently of the
 * store: pty host sockets and who answers on them, agent processes (found by
 * the TROUPE_* identity in their environment), worktree directories and
 * `troupe/*` branches. Doctor compares this with the rows.
 */
export interface World {
  hosts: Array<{ socket: string; identity: HostIdentity | null }>;
  /** Agent process leaders: the first process of each TROUPE_AGENT_ID of this workspace. */
  agents: Array<{ pid: number; actorId: string; name: string; cwd: string | null }>;
  worktreeDirs: string[];
  /** Worktrees git has registered under `.troupe/worktrees/`. */
  registeredWorktrees: string[];
  branches: string[];
  /** Lock files left by an owner that died while taking the lock (not the lock itself). */
  staleLockFiles: string[];
  /** The daemon's socket file, when nobody accepts connections on it. */
  staleDaemonSocket: string | null;
}

export async function observeWorld(layout: WorkspaceLayout): Promise<World> {
  const sockets = socketFiles(layout);
  const hosts = await Promise.all(
    sockets.map(async (socket) => {
      try {
        const client = await connectPtyHost(socket, { timeoutMs: 1500 });
        const identity = client.identity;
        client.close();
        return { socket, identity };
      } catch {
        return { socket, identity: null };
      }
    }),
  );
  const worktreeDirs = existsSync(layout.worktreesDir) ? readdirSync(layout.worktreesDir).map((entry) => join(layout.worktreesDir, entry)) : [];
  const registeredWorktrees = (await listWorktrees(layout.root)).map((w) => w.path).filter((path) => path.startsWith(layout.worktreesDir + "/"));
  const branches = await listBranches(layout.root, "troupe/");
  return { hosts, agents: agentProcesses(layout.root), worktreeDirs, registeredWorktrees, branches, staleLockFiles: staleLockFiles(layout.stateDir), staleDaemonSocket: await staleDaemonSocket(layout) };
}

/** `.lock.<pid>.*` and `lock.stale-<pid>-*` files of processes that are gone: the traces of an interrupted lock take-over. */
function staleLockFiles(stateDir: string): string[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir)
    .map((entry) => ({ entry, pid: /^(?:\.lock\.(\d+)\.|lock\.stale-(\d+)-)/.exec(entry) }))
    .filter(({ pid }) => pid !== null && Number(pid[1] ?? pid[2]) !== process.pid && !isProcessAlive(Number(pid[1] ?? pid[2])))
    .map(({ entry }) => join(stateDir, entry));
}

/** The daemon socket (or the short path it recorded) when a connection to it is refused. */
async function staleDaemonSocket(layout: WorkspaceLayout): Promise<string | null> {
  let socket = join(layout.runDir, "daemon.sock");
  try {
    socket = readFileSync(layout.daemonSocketRecord, "utf8").trim() || socket;
  } catch {
    // no short path recorded
  }
  if (!existsSync(socket)) return null;
  const refused = await new Promise<boolean>((resolve) => {
    const probe = createConnection(socket);
    const timer = setTimeout(() => finish(false), 1000);
    function finish(result: boolean) {
      clearTimeout(timer);
      probe.destroy();
      resolve(result);
    }
    probe.once("connect", () => finish(false));
    probe.once("error", (error: NodeJS.ErrnoException) => finish(error.code === "ECONNREFUSED" || error.code === "ENOENT"));
  });
  return refused ? socket : null;
}

function socketFiles(layout: WorkspaceLayout): string[] {
  const dirs = new Set([layout.ptyDir, layout.ptySocketPath("x").replace(/\/x\.sock$/, "")]);
  const found: string[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir)) if (entry.endsWith(".sock")) found.push(join(dir, entry));
  }
  return found;
}

/** Processes whose environment says they are an agent of this workspace; only the leader of each agent. */
export function agentProcesses(workspace: string): World["agents"] {
  const byActor = new Map<string, Array<{ pid: number; name: string; cwd: string | null }>>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {
      continue;
    }
    if (!environ.includes(`TROUPE_WORKSPACE=${workspace}\0`)) continue;
    const vars = new Map(environ.split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const));
    const actorId = vars.get("TROUPE_AGENT_ID");
    if (!actorId || !isProcessAlive(pid)) continue;
    const list = byActor.get(actorId) ?? [];
    list.push({ pid, name: vars.get("TROUPE_AGENT") ?? "?", cwd: cwdOf(pid) });
    byActor.set(actorId, list);
  }
  const leaders: World["agents"] = [];
  for (const [actorId, list] of byActor) {
    const pids = new Set(list.map((p) => p.pid));
    // Children inherit the environment: the leader is the one whose parent is not of the same agent.
    for (const p of list) if (!pids.has(parentPid(p.pid) ?? -1)) leaders.push({ ...p, actorId });
  }
  return leaders;
}

function cwdOf(pid: number): string | null {
  try {
    return realpathSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}
