import { constants, existsSync } from "node:fs";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TroupeError } from "../shared/errors.js";

/** Files the store creates are private to the owner, like the state dir. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Makes renames and creations inside `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** `<path>.<tag>-<timestamp>` that does not exist yet (a file set aside is never overwritten). */
export async function writeAside(path: string, tag: string, data: Uint8Array): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  for (let attempt = 0; ; attempt++) {
    const target = `${path}.${tag}-${stamp}${attempt === 0 ? "" : `-${attempt}`}`;
    try {
      const fh = await open(target, "wx", FILE_MODE);
      try {
        await writeAll(fh, data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsyncDir(dirname(path));
      return target;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 100) throw error;
    }
  }
}

/** Renames `path` aside to `<path>.<tag>-<timestamp>` (never deleting it); returns the new name. */
export async function renameAside(path: string, tag: string): Promise<string> {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  for (let attempt = 0; ; attempt++) {
    const target = `${path}.${tag}-${stamp}${attempt === 0 ? "" : `-${attempt}`}`;
    if (existsSync(target)) continue;
    await rename(path, target);
    await fsyncDir(dirname(path));
    return target;
  }
}

/** Writes `data` so that `path` holds either its old content or all of `data`, never a mix. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp`);
  const fh = await open(tmp, "w", FILE_MODE);
  try {
    await writeAll(fh, data);
    await fh.sync();
  } catch (error) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await fh.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** Writes all of `data` at `position` (a write may be short). */
export async function writeAll(fh: FileHandle, data: Uint8Array, position = 0): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await fh.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

export function ioError(action: string, path: string, error: unknown): TroupeError {
  const code = (error as NodeJS.ErrnoException)?.code ?? "unknown";
  return new TroupeError(
    "STORE_IO",
    `Could not ${action} ${path} (${code}: ${(error as Error)?.message ?? error}). Check that the disk is not full and that the state directory is writable by this user, then retry.`,
    { path, errno: code },
    { cause: error },
  );
}
