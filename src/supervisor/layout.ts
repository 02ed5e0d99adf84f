import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { WorkspaceLayout } from "../shared/layout.js";

export { workspaceLayout, type WorkspaceLayout } from "../shared/layout.js";

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
