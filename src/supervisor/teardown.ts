import { countCommitsAhead, deleteBranch, isWorktreeDirty, removeWorktree } from "../actors/index.js";
import { TroupeError } from "../shared/errors.js";
import { fault } from "../shared/faults.js";
import type { BuilderRuntime } from "./builder-runtime.js";

/**
 * Refuses (changing nothing) to destroy work that exists nowhere else: a
 * worktree with uncommitted changes, or a branch with commits not in its base.
 */
export async function assertNothingToLose(runtime: BuilderRuntime, repo: string): Promise<void> {
  const { worktree, branch, name } = runtime.row;
  if (worktree && (await isWorktreeDirty(worktree).catch(() => false))) {
    throw new TroupeError("WORKTREE_DIRTY", `Builder "${name}" has uncommitted changes in ${worktree}; commit or discard them, or destroy with force to throw them away.`, { name, worktree });
  }
  const spec = runtime.row.spec as { baseCommit?: string };
  if (branch && spec.baseCommit) {
    const ahead = await countCommitsAhead(repo, spec.baseCommit, branch).catch(() => 0);
    if (ahead > 0) {
      throw new TroupeError("WORKTREE_DIRTY", `Branch ${branch} of builder "${name}" has ${ahead} commit(s) not in its base; merge them, or destroy with force to delete the branch.`, { name, branch, ahead });
    }
  }
}

async function holdsNothing(repo: string, branch: string, base: string | undefined): Promise<boolean> {
  if (!base) return false;
  return (await countCommitsAhead(repo, base, branch).catch(() => 1)) === 0;
}

/**
 * DESIGN §3/§7: destroying.stopping → destroying.removingWorktree → destroyed.
 * Each step is persisted, so a crash mid-way resumes here on the next start,
 * and `destroyed` is entered only once process, host and worktree are gone.
 * Runs inside the builder's queue.
 */
export async function teardownBuilder(runtime: BuilderRuntime, repo: string, options: { rollback: boolean }): Promise<void> {
  if (runtime.life.state !== "destroying") {
    await runtime.transition({ type: "DESTROY", at: Date.now() }, { intent: { op: options.rollback ? "rollback" : "destroy", step: "stopping", at: Date.now() } });
    fault("destroy.after-destroying");
  }
  if (runtime.life.substate === "stopping") {
    await runtime.terminateAgent();
    fault("destroy.after-kill");
    await runtime.transition({ type: "PROCESS_GONE", at: Date.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null, intent: { op: "destroy", step: "removing-worktree", at: Date.now() } });
    fault("destroy.after-process-gone");
  }
  const { worktree, branch } = runtime.row;
  const spec = runtime.row.spec as { branchExisted?: boolean; baseCommit?: string };
  if (worktree) await removeWorktree({ repo, path: worktree, force: true });
  fault("destroy.after-worktree");
  // A branch troupe made is troupe's to delete. On a rolled-back spawn, a
  // branch that existed before it (or may have: a crash can hide which) is
  // the user's, unless it holds nothing beyond the spawn's base.
  if (branch && (!options.rollback || spec.branchExisted === false || (await holdsNothing(repo, branch, spec.baseCommit)))) await deleteBranch(repo, branch);
  fault("destroy.after-branch");
  await runtime.transition({ type: "WORKTREE_REMOVED", at: Date.now() }, { intent: null, ptySocket: null });
}
