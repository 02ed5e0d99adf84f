import { existsSync, rmSync } from "node:fs";
import { connectPtyHost, deleteBranch, removeWorktree } from "../actors/index.js";
import type { ActorRow, Store } from "../storage/types.js";
import type { DoctorFinding, FindingKind } from "../shared/contract.js";
import { isProcessAlive } from "../shared/proc.js";
import { terminateTree, waitForExit } from "../shared/terminate.js";
import type { BuilderRuntime } from "./builder/index.js";
import type { WorkspaceLayout } from "../shared/layout.js";
import { observeWorld, type World } from "./world.js";

export type { DoctorFinding, FindingKind };

export interface DoctorDeps {
  layout: WorkspaceLayout;
  store: Store;
  killTimeoutMs: number;
  runtimeById(id: string): BuilderRuntime | undefined;
  /** Tears a builder down to its tombstone (an interrupted teardown is finished) and unregisters it. */
  destroy(runtime: BuilderRuntime): Promise<void>;
}

type Repair = DoctorFinding & { apply(): Promise<void> };

/** Every mismatch between store and world, each with its repair. */
export async function diagnose(deps: DoctorDeps): Promise<Repair[]> {
  const world = await observeWorld(deps.layout);
  const rows = deps.store.listActors({ includeDestroyed: true });
  const byId = new Map(rows.map((row) => [row.id, row]));
  const live = rows.filter((row) => row.state !== "destroyed");
  const found: Repair[] = [];
  const add = (row: Pick<ActorRow, "name" | "id"> | null, kind: FindingKind, detail: string, fix: string, apply: () => Promise<void>) =>
    found.push({ kind, name: row?.name ?? null, id: row?.id ?? null, detail, fix, apply });

  for (const file of world.staleLockFiles) {
    add(null, "stale-lock", `${file} was left by a process that died while taking the workspace lock`, "remove the file", async () => rmSync(file, { force: true }));
  }
  if (world.staleDaemonSocket) {
    const socket = world.staleDaemonSocket;
    add(null, "stale-socket", `${socket}: the daemon that served this socket is gone`, "remove the socket file (the next troupe command starts a daemon)", async () => rmSync(socket, { force: true }));
  }

  const servedPids = new Set<number>();
  for (const { socket, identity } of world.hosts) {
    if (!identity) {
      add(null, "stale-socket", `${socket}: nobody answers on this socket`, "remove the socket file", async () => rmSync(socket, { force: true }));
      continue;
    }
    servedPids.add(identity.pid);
    const row = byId.get(identity.builderId);
    const who = { name: identity.name, id: identity.builderId };
    const agent = identity.exit ? `its agent exited (${identity.exit.signal ?? `code ${identity.exit.code}`})` : `agent pid ${identity.pid} running`;
    const stopHost = () => stopHostAt(socket, identity.hostPid, identity.hostStartTime, deps.killTimeoutMs);
    if (!row) add(who, "orphan-host", `pty host pid ${identity.hostPid} serves "${identity.name}" (${identity.builderId}), which has no row; ${agent}`, "stop its agent and host (or `troupe adopt` to register it)", stopHost);
    else if (row.state === "destroyed") add(who, "tombstone-leftover", `destroyed builder "${row.name}" still has pty host pid ${identity.hostPid}; ${agent}`, "stop its agent and host", stopHost);
    else if (identity.exit && row.state !== "working") add(who, "husk-host", `pty host pid ${identity.hostPid} still holds the exit status of "${row.name}" (${row.state})`, "collect the exit status so the host exits", stopHost);
    else if (!identity.exit && (row.state === "completed" || row.state === "zombie")) {
      add(who, "finished-with-live-host", `"${row.name}" is ${row.state} but its agent pid ${identity.pid} still runs`, "stop the agent", async () => {
        const runtime = deps.runtimeById(row.id);
        if (runtime) await runtime.endStrayAgent();
        else await stopHost();
      });
    }
  }

  for (const agent of world.agents) {
    if (servedPids.has(agent.pid)) continue;
    const row = byId.get(agent.actorId);
    const kill = async () => void (await terminateTree(agent.pid, { graceMs: deps.killTimeoutMs }));
    const who = { name: agent.name, id: agent.actorId };
    if (!row || row.state === "destroyed") add(who, "orphan-process", `agent process pid ${agent.pid} of "${agent.name}" has ${row ? "only a tombstone" : "no row"} and no pty host`, "kill its process tree", kill);
    else if (row.state !== "working" || row.pid !== agent.pid) add(who, "orphan-process", `agent process pid ${agent.pid} of "${agent.name}" is not the builder's agent (row: ${row.state}, pid ${row.pid ?? "none"}); one agent per worktree`, "kill its process tree", kill);
  }

  const owner = (field: "worktree" | "branch", value: string) => live.find((row) => row[field] === value);
  const tombstoneOf = (field: "worktree" | "branch", value: string) => rows.find((row) => row.state === "destroyed" && row[field] === value);
  for (const dir of new Set([...world.worktreeDirs, ...world.registeredWorktrees])) {
    if (owner("worktree", dir)) continue;
    const tomb = tombstoneOf("worktree", dir);
    const what = existsSync(dir) ? `worktree directory ${dir}` : `git still registers worktree ${dir}, whose directory is gone`;
    add(tomb ?? null, tomb ? "tombstone-leftover" : "orphan-worktree", `${what}${tomb ? ` of destroyed builder "${tomb.name}"` : " belongs to no builder"}`, "remove the worktree", () =>
      removeWorktree({ repo: deps.layout.root, path: dir, force: true }),
    );
  }
  for (const branch of world.branches) {
    if (owner("branch", branch)) continue;
    const tomb = tombstoneOf("branch", branch);
    add(tomb ?? null, tomb ? "tombstone-leftover" : "orphan-branch", `branch ${branch}${tomb ? ` of destroyed builder "${tomb.name}"` : " belongs to no builder"}`, "delete the branch", async () => {
      await deleteBranch(deps.layout.root, branch);
    });
  }

  for (const row of live) {
    const runtime = deps.runtimeById(row.id);
    if (row.state === "destroying") {
      add(row, "unfinished-teardown", `"${row.name}" is being destroyed (${row.substate})`, "finish the teardown", async () => runtime && deps.destroy(runtime));
      continue;
    }
    if (row.state === "working") {
      const hosted = world.hosts.some((h) => h.identity?.builderId === row.id);
      if (!hosted && !(row.pid && isProcessAlive(row.pid, row.pidStartTime))) {
        add(row, "lost-process", `"${row.name}" is working but its agent and pty host are gone`, "treat it as an exit: apply its restart policy", async () => {
          if (runtime) await runtime.resolveLost();
        });
        continue;
      }
    }
    if (row.worktree && row.state !== "booting" && !existsSync(row.worktree)) {
      add(row, "missing-worktree", `the worktree of "${row.name}" (${row.worktree}) is gone`, "destroy the builder (keep its tombstone)", async () => runtime && deps.destroy(runtime));
    }
  }
  return found;
}

/** Stops the agent of a host by its socket (SIGTERM → SIGKILL), collects its status, and makes sure the host is gone. */
async function stopHostAt(socket: string, hostPid: number, hostStartTime: number | null, killTimeoutMs: number): Promise<void> {
  try {
    const client = await connectPtyHost(socket, { timeoutMs: 1500 });
    if (!client.identity.exit) await client.stop({ killTimeoutMs }).catch(() => undefined);
    await client.collect().catch(() => undefined);
    client.close();
  } catch {
    // unreachable: fall through to the pid
  }
  // The host exits by itself once its status is collected; only one that does not is killed.
  if (!(await waitForExit({ pid: hostPid, start: hostStartTime }, killTimeoutMs))) await terminateTree(hostPid, { startTime: hostStartTime, graceMs: killTimeoutMs });
  rmSync(socket, { force: true });
}

export function publicFinding(repair: Repair): DoctorFinding {
  const { kind, name, id, detail, fix } = repair;
  return { kind, name, id, detail, fix };
}

export type { World };
