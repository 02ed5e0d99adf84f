import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { Supervisor } from "../../src/supervisor/supervisor.js";
import { agentProcesses } from "../../src/supervisor/world.js";
import { descendantPids, isProcessAlive } from "../../src/shared/proc.js";
import { git, processesOfWorkspace } from "./workspace.js";

/** Whether the process holds open a builder's log or transcript (an idle spare holds only the spare log). */
function opensBuilderFiles(pid: number, repo: string): boolean {
  const logs = join(repo, ".troupe", "logs");
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target.startsWith(`${logs}/`) && !target.endsWith("/pty-host-spare.log")) return true;
  }
  return false;
}

/**
 * pty host processes of a workspace, from the process table (their argv
 * names a path in it). An idle spare host (booted ahead of need, no agent
 * yet) serves no builder and is left out unless `spares`; a host that started
 * from a spare and whose agent has exited is not idle, and is counted.
 */
export function hostProcesses(repo: string, options: { spares?: boolean } = {}): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      // A spare that took work renamed itself ("troupe pty-host <name> <id>": its argv is gone); it is told apart by what it opened.
      if (argv[0]?.startsWith("troupe pty-host ") && !argv.some((arg) => arg.endsWith("pty-host/main.js"))) {
        if (!options.spares && isProcessAlive(Number(entry)) && opensBuilderFiles(Number(entry), repo)) found.push(Number(entry));
        continue;
      }
      if (!argv.some((arg) => arg.endsWith("pty-host/main.js")) || !argv.some((arg) => arg.startsWith(join(repo, ".troupe")))) continue;
      const pid = Number(entry);
      if (!isProcessAlive(pid)) continue;
      // A spare that took work keeps its argv: it is told apart by what it opened (its builder's logs).
      const idleSpare = argv.includes("--spare-for") && descendantPids(pid).length === 0 && !opensBuilderFiles(pid, repo);
      if (idleSpare === Boolean(options.spares)) found.push(pid);
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * DESIGN §7 invariants, checked against the world (process table, git, the
 * socket dir) rather than the store: returns every violation found.
 */
export async function invariantViolations(repo: string, supervisor: Supervisor): Promise<string[]> {
  const problems: string[] = [];
  const builders = await supervisor.status();
  const live = new Map(builders.map((b) => [b.name, b]));
  const worktrees = [...git(repo, "worktree", "list", "--porcelain").matchAll(/^worktree (.+)$/gm)].map((m) => m[1]!).filter((p) => p.startsWith(join(repo, ".troupe")));
  const dirs = existsSync(join(repo, ".troupe", "worktrees")) ? readdirSync(join(repo, ".troupe", "worktrees")).map((d) => join(repo, ".troupe", "worktrees", d)) : [];
  const branches = git(repo, "branch", "--list", "troupe/*", "--format=%(refname:short)").split("\n").filter(Boolean);
  const sockets = existsSync(join(repo, ".troupe", "run", "pty")) ? readdirSync(join(repo, ".troupe", "run", "pty")).filter((f) => f.endsWith(".sock")) : [];
  const agents = agentProcesses(repo);
  const hosts = hostProcesses(repo);

  // A: no artifact without a (live) row.
  for (const w of new Set([...worktrees, ...dirs])) if (![...live.values()].some((b) => b.worktree === w)) problems.push(`A: worktree ${w} has no live builder`);
  for (const br of branches) if (![...live.values()].some((b) => b.branch === br)) problems.push(`A: branch ${br} has no live builder`);
  for (const s of sockets) if (![...live.values()].some((b) => s === `${b.id}.sock`)) problems.push(`A: socket ${s} has no live builder`);
  for (const a of agents) if (!live.has(a.name) || live.get(a.name)!.id !== a.actorId) problems.push(`A: agent pid ${a.pid} (${a.name}) has no live builder`);
  // B: a row's state matches its artifacts.
  for (const b of live.values()) {
    const mine = agents.filter((a) => a.actorId === b.id);
    if (b.state === "working") {
      if (!b.pid || !isProcessAlive(b.pid)) problems.push(`B: ${b.name} is working but its agent is not running`);
      if (!b.worktree || !existsSync(b.worktree)) problems.push(`B: ${b.name} is working without its worktree`);
    } else if (mine.length > 0) problems.push(`B: ${b.name} is ${b.state} but agent pid ${mine.map((a) => a.pid)} runs`);
    if (b.state === "booting" || b.state === "destroying") problems.push(`B: ${b.name} is left in ${b.state}`);
  }
  if (hosts.length > builders.filter((b) => b.state === "working").length) problems.push(`B: ${hosts.length} pty hosts run for ${builders.filter((b) => b.state === "working").length} working builders`);
  // D: one agent per worktree.
  const perCwd = new Map<string, number>();
  for (const a of agents) if (a.cwd) perCwd.set(a.cwd, (perCwd.get(a.cwd) ?? 0) + 1);
  for (const [cwd, n] of perCwd) if (n > 1) problems.push(`D: ${n} agents in ${cwd}`);
  return problems;
}

/** Processes a workspace still has besides an idle spare host: agents, their children, builders' hosts. */
export function leftoverProcesses(repo: string): number[] {
  const spares = new Set(hostProcesses(repo, { spares: true }));
  return processesOfWorkspace(repo).filter((pid) => !spares.has(pid));
}
