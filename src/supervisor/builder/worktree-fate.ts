/**
 * What destroying a builder may take with it: its worktree and branch hold
 * the agent's work, which must never be lost by accident.
 */
import { countCommitsAhead, isWorktreeDirty } from "../../actors/index.js";
import { TroupeError } from "../../shared/errors.js";
import type { ActorRow } from "../../storage/types.js";

/**
 * Refuses (changing nothing) to destroy work that exists nowhere else: a
 * worktree with uncommitted changes, or a branch with commits not in its base.
 */
export async function assertNothingToLose(row: ActorRow, repo: string): Promise<void> {
  const { worktree, branch, name } = row;
  if (worktree && (await isWorktreeDirty(worktree).catch(() => false))) {
    throw new TroupeError("WORKTREE_DIRTY", `Builder "${name}" has uncommitted changes in ${worktree}; commit or discard them, or destroy with force to throw them away.`, { name, worktree });
  }
  const base = row.spec.baseCommit;
  if (branch && base) {
    const ahead = await countCommitsAhead(repo, base, branch).catch(() => 0);
    if (ahead > 0) {
      throw new TroupeError("WORKTREE_DIRTY", `Branch ${branch} of builder "${name}" has ${ahead} commit(s) not in its base; merge them, or destroy with force to delete the branch.`, { name, branch, ahead });
    }
  }
}

/**
 * A branch troupe made is troupe's to delete. On a rolled-back spawn, a
 * branch that existed before it (or may have: a crash can hide which) is the
 * user's, unless it holds nothing beyond the spawn's base.
 */
export async function branchIsOurs(row: ActorRow, repo: string, options: { rollback: boolean }): Promise<boolean> {
  if (!options.rollback || row.spec.branchExisted === false) return true;
  const base = row.spec.baseCommit;
  if (!base || !row.branch) return false;
  return (await countCommitsAhead(repo, base, row.branch).catch(() => 1)) === 0;
}
