import { createHash } from "node:crypto";
import { mkdirSync, appendFileSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where everything of one workspace lives (DESIGN §2, §5, §6, §9). */
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
  worktreePath(name: string): string;
  branchName(name: string): string;
  ptySocketPath(builderId: string): string;
  exitStatusPath(builderId: string): string;
  transcriptPath(name: string, builderId: string): string;
  hostLogPath(name: string): string;
}

/** Unix socket paths are limited to 107 bytes on Linux; keep a margin. */
const SOCKET_PATH_LIMIT = 100;

export function workspaceLayout(root: string): WorkspaceLayout {
  const troupeDir = join(root, ".troupe");
  const runDir = join(troupeDir, "run");
  const ptyDir = join(runDir, "pty");
  const logsDir = join(troupeDir, "logs");
  const shortDir = join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `troupe-${process.getuid?.() ?? 0}`, createHash("sha256").update(root).digest("hex").slice(0, 12));
  return {
    root,
    troupeDir,
    stateDir: join(troupeDir, "state"),
    worktreesDir: join(troupeDir, "worktrees"),
    runDir,
    ptyDir,
    logsDir,
    configFile: join(troupeDir, "config.json"),
    worktreePath: (name) => join(troupeDir, "worktrees", name),
    branchName: (name) => `troupe/${name}`,
    ptySocketPath: (id) => {
      const preferred = join(ptyDir, `${id}.sock`);
      return Buffer.byteLength(preferred) <= SOCKET_PATH_LIMIT ? preferred : join(shortDir, `${id}.sock`);
    },
    exitStatusPath: (id) => join(ptyDir, `${id}.exit.json`),
    transcriptPath: (name, id) => join(logsDir, name, `${id}.log`),
    hostLogPath: (name) => join(logsDir, name, "pty-host.log"),
  };
}

/**
 * Creates the owner-only directories and keeps `.troupe/` out of git's view:
 * builders' worktrees live under it, and the main tree must not look dirty.
 */
export function prepareWorkspace(layout: WorkspaceLayout, gitCommonDir: string): void {
  for (const dir of [layout.troupeDir, layout.stateDir, layout.worktreesDir, layout.runDir, layout.ptyDir, layout.logsDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const exclude = join(gitCommonDir, "info", "exclude");
  const current = existsSync(exclude) ? readFileSync(exclude, "utf8") : "";
  if (!current.split("\n").some((line) => line.trim() === "/.troupe/" || line.trim() === ".troupe/")) {
    mkdirSync(join(gitCommonDir, "info"), { recursive: true });
    appendFileSync(exclude, `${current.endsWith("\n") || current === "" ? "" : "\n"}/.troupe/\n`);
  }
}
