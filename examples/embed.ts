/**
 * A host program that embeds troupe: it spawns two builders in a throwaway
 * git repository, prints every transition, and shuts down cleanly.
 *
 *   npx tsx examples/embed.ts            (or: node dist/... after `npm run build`)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSupervisor } from "../src/index.js";

const repo = mkdtempSync(join(tmpdir(), "troupe-embed-"));
const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "ignore", env: { ...process.env, GIT_AUTHOR_NAME: "embed", GIT_AUTHOR_EMAIL: "embed@example.invalid", GIT_COMMITTER_NAME: "embed", GIT_COMMITTER_EMAIL: "embed@example.invalid" } });
git("init", "-q", "-b", "main");
writeFileSync(join(repo, "README.md"), "embedded troupe demo\n");
git("add", ".");
git("commit", "-q", "-m", "initial");

const supervisor = await createSupervisor({ workspace: repo, timings: { killTimeoutMs: 1000 } });
supervisor.subscribe((event) => {
  if (event.type === "transition") console.log(`${event.name.padEnd(8)} ${event.from} → ${event.to}  (${event.event})`);
  if (event.type === "notice") console.log(`${event.name.padEnd(8)} notice ${event.kind} to ${event.to}: ${event.reason}`);
});

try {
  // A builder that works for a moment and exits 0; one that keeps running until stopped.
  await supervisor.spawn({ name: "counter", cmd: ["node", "-e", "let i=0; const t=setInterval(()=>{console.log('tick', ++i); if(i===3){clearInterval(t)}}, 100)"] });
  await supervisor.spawn({ name: "watcher", cmd: ["node", "-e", "console.log('watching'); setInterval(()=>{}, 1000)"] });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  for (const builder of await supervisor.status()) {
    console.log(`${builder.name}: ${builder.state}${builder.substate ? "." + builder.substate : ""} pid=${builder.pid ?? "-"} branch=${builder.branch}`);
  }
  await supervisor.destroy("counter", { force: true });
  await supervisor.destroy("watcher", { force: true });
} finally {
  await supervisor.close();
  rmSync(repo, { recursive: true, force: true });
}
console.log("closed cleanly");
