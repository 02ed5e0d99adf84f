/**
 * The stand-in agent of `troupe demo` (shipped in the package as
 * dist/cli/demo-agent.js): it talks to troupe the way a real agent would, by
 * running the `troupe` CLI with the TROUPE_* identity troupe gave it.
 *
 *   demo-agent.js builder <task>   works on <task>, mails its result to its parent,
 *                                  waits for the reply, then reports worker_done
 *   demo-agent.js lead <n>         waits for results from <n> children, replies to
 *                                  each, waits until they are done, then reports
 *                                  worker_done to its own parent (the operator)
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const TROUPE = fileURLToPath(new URL("../../bin/troupe.js", import.meta.url));
const self = process.env.TROUPE_AGENT ?? "agent";
const POLL_MS = Number(process.env.TROUPE_DEMO_POLL_MS ?? 300);

interface Mail {
  id: string;
  from: string;
  type: string;
  subject: string | null;
  body: string;
}

function say(text: string): void {
  process.stdout.write(`[${self}] ${text}\r\n`);
}

function troupe(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [TROUPE, ...args], { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`troupe ${args[0]} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function inbox(): Promise<Mail[]> {
  return JSON.parse(await troupe("mail", self, "--json")) as Mail[];
}

async function builder(task: string): Promise<void> {
  say(`working on: ${task}`);
  await sleep(200);
  const words = task.split(/\s+/).filter(Boolean).length;
  const result = `finished "${task}" (${words} words, ${task.length} characters)`;
  say(result);
  await troupe("send", "parent", result, "--type", "result", "--subject", `result from ${self}`);
  say("result sent to my parent; waiting for its reply");
  for (;;) {
    const reply = (await inbox()).find((m) => m.type !== "result" && m.from !== self);
    if (reply) {
      say(`reply from ${reply.from}: ${reply.body}`);
      break;
    }
    await sleep(POLL_MS);
  }
  await troupe("send", "parent", `${self} is done`, "--type", "worker_done");
  say("reported worker_done");
}

async function lead(expected: number): Promise<void> {
  say(`waiting for results from ${expected} builders`);
  const answered = new Set<string>();
  while (answered.size < expected) {
    for (const m of await inbox()) {
      if (m.type !== "result" || answered.has(m.from)) continue;
      answered.add(m.from);
      say(`result from ${m.from}: ${m.body}`);
      await troupe("send", m.from, `thanks ${m.from}, result accepted`, "--type", "status", "--subject", `re: ${m.subject ?? "result"}`);
    }
    if (answered.size < expected) await sleep(POLL_MS);
  }
  say("all results in; waiting for my builders to finish");
  for (;;) {
    const builders = JSON.parse(await troupe("status", "--json")) as Array<{ name: string; parent: string | null; state: string }>;
    const mine = builders.filter((b) => b.parent === self);
    if (mine.length >= expected && mine.every((b) => b.state === "completed")) break;
    await sleep(POLL_MS);
  }
  await troupe("send", "parent", `both builders finished: ${[...answered].join(", ")}`, "--type", "worker_done", "--subject", "lead done");
  say("reported worker_done to the operator");
}

async function main(): Promise<void> {
  const [role, arg = ""] = process.argv.slice(2);
  if (role === "lead") await lead(Number(arg) || 2);
  else await builder(arg || "a small task");
  // A real agent would go on; troupe stops this one once it sees worker_done.
  setInterval(() => undefined, 1 << 30);
}

main().catch((error: unknown) => {
  say(`failed: ${(error as Error).message}`);
  process.exit(1);
});
