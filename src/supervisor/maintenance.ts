import { existsSync, readFileSync } from "node:fs";
import type { HostIdentity } from "../actors/index.js";
import type { ActorRow, Store } from "../storage/types.js";
import type { AdoptReport, DoctorFinding, DoctorReport } from "../shared/contract.js";
import { BuilderRuntime, type BuilderEnvironment } from "./builder/index.js";
import { diagnose, publicFinding, type DoctorDeps } from "./doctor.js";
import type { WorkspaceLayout } from "./layout.js";
import { validateBuilderName } from "../shared/spawn-request.js";
import { agentProcesses, observeWorld } from "./world.js";

export interface MaintenanceDeps extends DoctorDeps {
  store: Store;
  layout: WorkspaceLayout;
  builderEnv: BuilderEnvironment;
  runtimeByName(name: string): BuilderRuntime | undefined;
  register(runtime: BuilderRuntime): void;
}

export type { DoctorReport };

/** `doctor`: every mismatch between store and world; with `fix`, each is repaired and the world looked at again. */
export async function runDoctor(deps: MaintenanceDeps, options: { fix?: boolean } = {}): Promise<DoctorReport> {
  const repairs = await diagnose(deps);
  if (!options.fix) return { findings: repairs.map(publicFinding) };
  const fixed: DoctorFinding[] = [];
  const failed: Array<DoctorFinding & { error: string }> = [];
  // Processes first, then directories and branches they may still be using.
  const order = ["orphan-host", "husk-host", "finished-with-live-host", "orphan-process", "tombstone-leftover", "stale-socket", "stale-lock", "lost-process", "unfinished-teardown", "missing-worktree", "orphan-worktree", "orphan-branch"];
  repairs.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const repair of repairs) {
    try {
      await repair.apply();
      fixed.push(publicFinding(repair));
    } catch (error) {
      failed.push({ ...publicFinding(repair), error: (error as Error).message });
    }
  }
  const after = await diagnose(deps);
  return { findings: after.map(publicFinding), fixed, failed };
}

/**
 * `adopt`: registers every live pty host that serves a builder with no row
 * (the registration was lost) as a working builder of its own name and
 * incarnation, in its worktree when that is still there.
 */
export async function adoptOrphans(deps: MaintenanceDeps): Promise<AdoptReport> {
  const world = await observeWorld(deps.layout);
  const adopted: AdoptReport["adopted"] = [];
  const skipped: AdoptReport["skipped"] = [];
  for (const { socket, identity } of world.hosts) {
    if (!identity || deps.store.getActor(identity.builderId)) continue;
    const reason = adoptionProblem(deps, identity);
    if (reason) {
      skipped.push({ name: identity.name, id: identity.builderId, reason });
      continue;
    }
    const runtime = BuilderRuntime.forOrphan(deps.builderEnv, orphanRow(deps.layout, world.branches, identity, socket));
    deps.register(runtime);
    await runtime.adopt();
    adopted.push(runtime.status());
  }
  return { adopted, skipped };
}

function adoptionProblem(deps: MaintenanceDeps, identity: HostIdentity): string | null {
  if (identity.exit) return "its agent already exited; `troupe doctor --fix` collects it";
  try {
    validateBuilderName(identity.name);
  } catch {
    return `"${identity.name}" is not a valid builder name`;
  }
  if (deps.runtimeByName(identity.name)) return `a live builder named "${identity.name}" exists; destroy it first`;
  return null;
}

function orphanRow(layout: WorkspaceLayout, branches: string[], identity: HostIdentity, socket: string): ActorRow {
  const now = Date.now();
  const worktree = layout.worktreePath(identity.name);
  const branch = layout.branchName(identity.name);
  return {
    id: identity.builderId,
    name: identity.name,
    role: null,
    parent: null,
    parentId: null,
    supervisorNode: "root",
    state: "booting",
    substate: "starting",
    snapshot: null,
    machineVersion: 0,
    worktree: existsSync(worktree) ? worktree : null,
    branch: branches.includes(branch) ? branch : null,
    ptySocket: socket,
    pty: identity.pty,
    pid: identity.pid,
    pidStartTime: identity.pidStartTime,
    hostPid: identity.hostPid,
    hostStartTime: identity.hostStartTime,
    restarts: 0,
    restartTimes: [],
    spec: { agent: "shell", cmd: commandLine(identity.pid), restart: "transient", pty: identity.pty ? "on" : "off", env: {}, policy: {}, adopted: true },
    intent: null,
    createdAt: identity.startedAt,
    updatedAt: now,
    destroyedAt: null,
    lastActivityAt: null,
  };
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** `gc`: forgets tombstones destroyed longer ago than `olderThanMs` of which nothing is left. */
export async function collectTombstones(deps: MaintenanceDeps, options: { olderThanMs?: number } = {}): Promise<Array<{ name: string; id: string }>> {
  const cutoff = Date.now() - (options.olderThanMs ?? 7 * 24 * 3600_000);
  const world = await observeWorld(deps.layout);
  const agents = agentProcesses(deps.layout.root);
  const removable = deps.store.listActors({ includeDestroyed: true }).filter((row) => {
    if (row.state !== "destroyed" || (row.destroyedAt ?? Infinity) > cutoff) return false;
    const newer = deps.runtimeByName(row.name);
    const leftovers =
      world.hosts.some((h) => h.identity?.builderId === row.id) ||
      agents.some((a) => a.actorId === row.id) ||
      (!newer && ((row.worktree !== null && existsSync(row.worktree)) || (row.branch !== null && world.branches.includes(row.branch))));
    return !leftovers;
  });
  if (removable.length > 0) await deps.store.write((tx) => removable.forEach((row) => tx.deleteActor(row.id)));
  return removable.map((row) => ({ name: row.name, id: row.id }));
}
