import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { workspace } from "../../client/discovery.js";
import { workspaceLayout } from "../../shared/layout.js";
import { parse } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe init

Sets this repository up for troupe: creates .troupe/ (owner-only) in the main
working tree and adds /.troupe/ to .git/info/exclude, so builders' worktrees
never make the main tree look dirty. Safe to run again.

Options:
  --json     print what was done
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, {}, usage, { min: 0, max: 0 });
  const { root, commonDir } = workspace();
  const { troupeDir } = workspaceLayout(root);
  const created = !existsSync(troupeDir);
  mkdirSync(troupeDir, { recursive: true, mode: 0o700 });
  chmodSync(troupeDir, 0o700);
  const exclude = join(commonDir, "info", "exclude");
  const current = existsSync(exclude) ? readFileSync(exclude, "utf8") : "";
  const present = current.split("\n").some((line) => line.trim() === "/.troupe/" || line.trim() === ".troupe/" || line.trim() === "/.troupe");
  if (!present) {
    mkdirSync(join(commonDir, "info"), { recursive: true });
    appendFileSync(exclude, `${current === "" || current.endsWith("\n") ? "" : "\n"}/.troupe/\n`);
  }
  if (args.json) {
    printJson({ workspace: root, troupeDir, exclude, created, excludeAdded: !present });
  } else {
    print(`${created ? "initialised" : "already initialised"}: ${troupeDir} (owner-only)`);
    print(present ? `/.troupe/ was already in ${exclude}` : `added /.troupe/ to ${exclude}`);
  }
  return 0;
}
