import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
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

/**
 * `troupe` for the agents (DESIGN §5a: troupe is on every agent's PATH): a
 * shim in `.troupe/bin` that runs this installation's CLI with the
 * supervisor's Node, whatever the agent's own PATH holds. Rewritten only
 * when it would change, so a running agent never sees it half-written.
 */
export function writeAgentShim(layout: WorkspaceLayout, nodePath: string): void {
  const cli = fileURLToPath(new URL("../../bin/troupe.js", import.meta.url));
  const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;
  const script = `#!/bin/sh\n# troupe for the agents of this workspace (written by troupe's supervisor)\nexec ${quote(nodePath)} ${quote(cli)} "$@"\n`;
  const path = join(layout.agentBinDir, "troupe");
  if (existsSync(path) && readFileSync(path, "utf8") === script) return;
  mkdirSync(layout.agentBinDir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, script, { mode: 0o700 });
  renameSync(temp, path);
}
