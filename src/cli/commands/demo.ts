import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { launchDaemon } from "../../client/discovery.js";
import type { DaemonClient } from "../../client/rpc.js";
import type { BuilderStatus, MailMessage } from "../../shared/contract.js";
import { TroupeError } from "../../shared/errors.js";
import { isProcessAlive } from "../../shared/proc.js";
import { builderTree } from "../../term/builders.js";
import { mailList } from "../../term/mail.js";
import { paint } from "../../term/paint.js";
import { parse } from "../args.js";
import { note, print, printJson } from "../output.js";

export const usage = `Usage: troupe demo

Shows troupe at work with no AI agent installed: in a throwaway git
repository it starts a daemon, spawns a lead and two builders under it (a
small bundled stand-in agent), lets them exchange mail (the builders send
their results to their parent, the lead replies) and finish (worker_done),
prints the tree and the mail, then cleans everything up.

Options:
  --json     print { repository, builders, mail } instead of the tour
  -h, --help`;

const AGENT = fileURLToPath(new URL("../demo-agent.js", import.meta.url));

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, {}, usage, { min: 0, max: 0 });
  const p = paint();
  const say = (text: string) => (args.json ? note(text) : print(text));
  const repo = realpathSync(mkdtempSync(join(tmpdir(), "troupe-demo-")));
  let client: DaemonClient | null = null;
  let daemonPid: number | null = null;
  try {
    gitInit(repo);
    say(p.bold("troupe demo: a lead and two builders in a throwaway repository"));
    say(`  repository  ${repo}`);
    client = await launchDaemon(repo, { announce: false });
    daemonPid = client.hello!.pid;
    say(`  daemon      pid ${daemonPid} (${client.hello!.socket})`);
    say("");
    await client.call("subscribe", {});
    let live = true;
    client.onEvent((e) => {
      if (live && e.type === "transition") say(`  ${p.dim("·")} ${p.bold(e.name)} ${e.from} → ${e.to}${e.event ? p.dim(`  (${e.event})`) : ""}`);
    });
    const node = process.execPath;
    await client.call("spawn", { name: "lead", cmd: [node, AGENT, "lead", "2"], role: "lead", restart: "temporary", task: "coordinate two builders" });
    const tasks = ["count the words of this sentence", "summarise the repository README"];
    for (const [i, task] of tasks.entries()) {
      await client.call("spawn", { name: `builder-${i + 1}`, cmd: [node, AGENT, "builder", task], parent: "lead", role: "builder", restart: "temporary", task });
    }
    const builders = await waitAllCompleted(client, ["lead", "builder-1", "builder-2"]);
    live = false;
    const mail = await allMail(client, ["operator", "lead", "builder-1", "builder-2"]);
    if (args.json) {
      printJson({ repository: repo, builders, mail });
    } else {
      print("");
      print(p.bold("The tree:"));
      print(builderTree(builders, p));
      print("");
      print(p.bold("The mail:"));
      print(mailList(mail, p));
      print("");
    }
    return 0;
  } finally {
    await cleanUp(repo, client, daemonPid, say);
  }
}

function gitInit(repo: string): void {
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=troupe demo", "-c", "user.email=demo@troupe.invalid", ...args], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  git("init", "-q", "-b", "main");
  writeFileSync(join(repo, "README.md"), "# demo\n\nA throwaway repository made by `troupe demo`.\n");
  git("add", "README.md");
  git("commit", "-q", "-m", "demo: initial commit");
}

async function waitAllCompleted(client: DaemonClient, names: string[]): Promise<BuilderStatus[]> {
  const timeoutMs = Number(process.env.TROUPE_DEMO_TIMEOUT_MS ?? 120_000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const builders = await client.call("status", {});
    const mine = builders.filter((b) => names.includes(b.name));
    const failed = mine.find((b) => b.state === "zombie");
    if (failed) throw new TroupeError("DEMO_FAILED", `builder ${failed.name} became a zombie: ${failed.reason ?? "no reason given"}`);
    if (mine.length === names.length && mine.every((b) => b.state === "completed")) return builders;
    if (Date.now() > deadline) throw new TroupeError("DEMO_FAILED", `the demo did not finish within ${timeoutMs} ms (states: ${mine.map((b) => `${b.name} ${b.state}`).join(", ")})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function allMail(client: DaemonClient, inboxes: string[]): Promise<MailMessage[]> {
  const byId = new Map<string, MailMessage>();
  for (const name of inboxes) {
    for (const m of await client.call("mail", name === "operator" ? {} : { name })) byId.set(m.id, m);
  }
  return [...byId.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Destroys every builder (their agents and pty hosts), stops the daemon, removes the repository. */
async function cleanUp(repo: string, client: DaemonClient | null, daemonPid: number | null, say: (text: string) => void): Promise<void> {
  const problems: string[] = [];
  if (client) {
    try {
      for (const b of await client.call("status", {})) {
        await client.call("destroy", { name: b.name, force: true }).catch((error: Error) => problems.push(`destroy ${b.name}: ${error.message}`));
      }
      await client.call("daemon.stop", {}).catch(() => undefined);
    } catch (error) {
      problems.push((error as Error).message);
    }
    client.close();
  }
  if (daemonPid !== null) {
    const deadline = Date.now() + 20_000;
    while (isProcessAlive(daemonPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    if (isProcessAlive(daemonPid)) {
      try {
        process.kill(daemonPid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  rmSync(repo, { recursive: true, force: true });
  say(problems.length === 0 ? `cleaned up: builders destroyed, daemon stopped, ${repo} removed` : `cleaned up with problems: ${problems.join("; ")}`);
}
