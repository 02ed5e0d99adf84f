import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TroupeError } from "../shared/errors.js";
import { isProcessAlive, processStartTime } from "../shared/proc.js";
import { FILE_MODE, ioError } from "./fsutil.js";

export const LOCK_FILE = "lock";

export interface LockOwner {
  pid: number;
  startTime: number | null;
  startedAt: string;
}

export interface HeldLock {
  owner: LockOwner;
  staleTakenOver: { pid: number; startTime: number | null } | null;
  release(): Promise<void>;
}

/**
 * Takes `dir/lock` for this process. The lock file is written complete under
 * a private name and hard-linked into place, so it appears atomically with its
 * content (link fails when the lock exists: an O_EXCL create that never shows
 * a half-written file). A lock whose owner is gone, or whose pid now belongs
 * to another process (a different start time), is taken over.
 */
export async function acquireLock(dir: string): Promise<HeldLock> {
  const path = join(dir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, startTime: processStartTime(process.pid), startedAt: new Date().toISOString() };
  const mine = join(dir, `.lock.${process.pid}.${Math.random().toString(36).slice(2)}`);
  await writeFile(mine, JSON.stringify(owner) + "\n", { mode: FILE_MODE }).catch((error: unknown) => {
    throw ioError("write the lock file", mine, error);
  });
  let staleTakenOver: HeldLock["staleTakenOver"] = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(mine, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw ioError("create the lock file", path, error);
      }
      if (attempt >= 20) {
        throw new TroupeError("STORE_LOCKED", `Could not take the workspace lock ${path}: it keeps changing hands. Another troupe is starting here; retry in a moment.`, { path });
      }
      const text = await readFile(path, "utf8").catch(() => null);
      if (text === null) continue; // released meanwhile: try again
      const current = parseOwner(text);
      if (current && isProcessAlive(current.pid, current.startTime)) {
        throw new TroupeError(
          "STORE_LOCKED",
          `workspace owned by pid ${current.pid} (started ${current.startedAt}): only one troupe process may own ${dir} at a time. ` +
            `Go through that process (the troupe daemon and CLI), or stop it and retry.`,
          { path, pid: current.pid, startTime: current.startTime, startedAt: current.startedAt },
        );
      }
      if (await takeOver(path, text)) {
        staleTakenOver = current ? { pid: current.pid, startTime: current.startTime } : { pid: 0, startTime: null };
      }
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  let released = false;
  return {
    owner,
    staleTakenOver,
    async release() {
      if (released) return;
      released = true;
      // Unlink only our own lock: never one a later owner took over.
      const text = await readFile(path, "utf8").catch(() => null);
      const current = text === null ? null : parseOwner(text);
      if (current && current.pid === owner.pid && current.startTime === owner.startTime && current.startedAt === owner.startedAt) {
        await unlink(path).catch(() => undefined);
      }
    },
  };
}

/**
 * Moves the stale lock aside and checks that what was moved is the stale lock
 * that was judged (not a fresh one another contender linked in meanwhile);
 * puts a fresh one back if it was. True when the stale lock is gone.
 */
async function takeOver(path: string, staleText: string): Promise<boolean> {
  const aside = `${path}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await rename(path, aside);
  } catch {
    return false; // someone else moved it first
  }
  const moved = await readFile(aside, "utf8").catch(() => null);
  if (moved !== null && moved !== staleText) {
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

export function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== "number" || !Number.isInteger(value.pid)) return null;
    return {
      pid: value.pid,
      startTime: typeof value.startTime === "number" ? value.startTime : null,
      startedAt: typeof value.startedAt === "string" ? value.startedAt : "an unknown time",
    };
  } catch {
    return null;
  }
}
