/**
 * Every command against one real daemon, through the real binary: the
 * auto-start, spawn/status/send/mail/logs/stop/restart/destroy and their
 * --json shapes, the maintenance commands, a command run from inside a
 * builder's worktree, and the daemon killed with SIGKILL while builders run.
 */
import type { BuilderStatus } from "../../src/shared/contract.js";
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { waitFor } from "../helpers/workspace.js";
import { BIN, TestWorkspace, agent, cliEnv } from "./harness.js";

/** What `troupe status --json` prints: the contract's shape. */
type Builder = BuilderStatus;

interface Mail {
  id: string;
  from: string;
  to: string;
  type: string;
  body: string;
  subject: string | null;
  readAt: number | null;
}

const STATUS_FIELDS = ["name", "id", "role", "parent", "state", "substate", "pid", "pty", "worktree", "branch", "restarts", "createdAt", "lastActivityAt"];
const node = process.execPath;

let ws: TestWorkspace;
let daemonPid = 0;

beforeAll(() => {
  ws = new TestWorkspace("troupe-e2e-");
});
afterAll(async () => {
  await ws.close();
});

const byName = (builders: Builder[], name: string): Builder => {
  const found = builders.find((b) => b.name === name);
  if (!found) throw new Error(`no builder ${name} in ${builders.map((b) => b.name).join(", ")}`);
  return found;
};

describe("the daemon starts on demand", () => {
  it("status starts it, says so on stderr, and prints an empty array", async () => {
    const result = await ws.run(["status", "--json"]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    const started = /started the daemon \(pid (\d+)\)/.exec(result.stderr);
    expect(started).not.toBeNull();
    daemonPid = Number(started![1]);
    expect(isProcessAlive(daemonPid)).toBe(true);
    const human = await ws.run(["status"]);
    expect(human.stdout).toContain("No builders");
    expect(human.stderr).toBe(""); // no second start
  });

  it("daemon status/start report the running daemon; the socket is owner-only", async () => {
    const status = await ws.ok<Record<string, unknown>>(["daemon", "status", "--json"]);
    expect(status).toMatchObject({ running: true, pid: daemonPid, protocol: 1, workspace: ws.repo, node: process.version, builders: 0 });
    const socket = status.socket as string;
    expect(socket).toBe(join(ws.repo, ".troupe", "run", "daemon.sock"));
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(socket)).mode & 0o777).toBe(0o700);
    // its own memory, as the kernel sees it too
    const memory = status.memory as { rss: number; heapUsed: number; heapTotal: number };
    const vmRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${daemonPid}/status`, "utf8"))![1]) * 1024;
    expect(memory.rss).toBeGreaterThan(vmRss / 2);
    expect(memory.rss).toBeLessThan(vmRss * 2);
    expect(memory.heapUsed).toBeGreaterThan(0);
    expect(memory.heapUsed).toBeLessThanOrEqual(memory.heapTotal);
    const start = await ws.ok<Record<string, unknown>>(["daemon", "start", "--json"]);
    expect(start).toMatchObject({ running: true, started: false, pid: daemonPid });
    const human = await ws.ok<string>(["daemon", "status"]);
    expect(human).toContain(`pid ${daemonPid}`);
    expect(human).toContain(ws.repo);
    expect(human).toMatch(/memory\s+rss \d+\.\d MiB {2}heap /);
  });
});

describe("builders", () => {
  it("spawn (-- argv, --cmd words, --parent/--role/--restart) prints the builder object", async () => {
    const lead = await ws.ok<Builder>(["spawn", "lead", "--role", "lead", "--json", "--", node, agent("cli-quiet.mjs")]);
    for (const field of STATUS_FIELDS) expect(lead).toHaveProperty(field);
    expect(lead).toMatchObject({ name: "lead", role: "lead", parent: null, state: "working", restarts: 0, branch: "troupe/lead", worktree: join(ws.repo, ".troupe", "worktrees", "lead") });
    expect(isProcessAlive(lead.pid!)).toBe(true);
    const worker = await ws.ok<Builder>(["spawn", "worker", "--parent", "lead", "--restart", "temporary", "--pty", "on", "--task", "do it", "--json", "--cmd", `'${node}' "${agent("cli-quiet.mjs")}"`]);
    expect(worker).toMatchObject({ name: "worker", parent: "lead", state: "working", pty: true });
    const human = await ws.ok<string>(["spawn", "echo", "--", node, agent("cli-echo.mjs")]);
    expect(human).toMatch(/spawned echo \(working/);
  });

  it("spawn refuses a taken name (exit 1, NAME_TAKEN)", async () => {
    const result = await ws.run(["spawn", "lead", "--json", "--", node, agent("cli-quiet.mjs")]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error.code).toBe("NAME_TAKEN");
    expect(result.stderr).toContain('Builder "lead" already exists');
  });

  it("status --json has the documented fields; status prints the tree", async () => {
    const builders = await ws.ok<Builder[]>(["status", "--json"]);
    expect(builders.map((b) => b.name)).toEqual(["lead", "worker", "echo"]);
    for (const b of builders) for (const field of STATUS_FIELDS) expect(b).toHaveProperty(field);
    const tree = (await ws.ok<string>(["status"])).split("\n");
    expect(tree[0]).toMatch(/^NAME\s+STATE\s+PID\s+RESTARTS\s+BRANCH/);
    const leadLine = tree.findIndex((line) => line.startsWith("lead "));
    expect(tree[leadLine + 1]).toMatch(/^└─ worker\s+working\.\w+\s+\d+\s+0\s+troupe\/worker/);
    expect(tree.some((line) => line.startsWith("echo "))).toBe(true);
    expect(tree.join("\n")).not.toContain("\u001b["); // no colours when stdout is not a TTY
  });

  it("a command run inside a builder's worktree reaches the same daemon", async () => {
    const builders = await ws.ok<Builder[]>(["status", "--json"]);
    const inWorktree = await ws.run(["status", "--json"], { cwd: byName(builders, "worker").worktree! });
    expect(inWorktree.code).toBe(0);
    expect(inWorktree.stderr).toBe("");
    expect(JSON.parse(inWorktree.stdout).map((b: Builder) => b.id)).toEqual(builders.map((b) => b.id));
  });

  it("logs prints the transcript; --json gives its path", async () => {
    await waitFor(async () => (await ws.ok<string>(["logs", "echo"])).includes("ready echo"), "the echo agent's first output");
    const info = await ws.ok<{ name: string; id: string; path: string; exists: boolean; content: string }>(["logs", "echo", "--json"]);
    const builders = await ws.ok<Builder[]>(["status", "--json"]);
    expect(info).toMatchObject({ name: "echo", id: byName(builders, "echo").id, exists: true, path: join(ws.repo, ".troupe", "logs", "echo", `${byName(builders, "echo").id}.log`) });
    expect(info.content).toContain("ready echo");
  });

  it("logs --follow streams new output and ends when the builder is destroyed", async () => {
    await ws.ok(["spawn", "ticker", "--", node, agent("cli-ticker.mjs")]);
    const child = spawn(node, [BIN, "logs", "ticker", "--follow"], { cwd: ws.repo, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(() => /tick 3\b/.test(out), "three ticks through logs --follow");
      const seen = Number(/tick (\d+)\s*$/.exec(out.trimEnd())?.[1] ?? 0);
      await waitFor(() => new RegExp(`tick ${seen + 2}\\b`).test(out), "more ticks while following");
      await ws.ok(["destroy", "ticker", "--force"]);
      expect(await exited).toBe(0);
      expect(err).toContain("ticker was destroyed");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("stop → completed, restart → working again, destroy → tombstone (status --all)", async () => {
    const before = byName(await ws.ok<Builder[]>(["status", "--json"]), "worker");
    const stopped = await ws.ok<Builder>(["stop", "worker", "--json"]);
    expect(stopped).toMatchObject({ name: "worker", state: "completed" });
    await waitFor(() => !isProcessAlive(before.pid!), "the stopped agent to exit");
    const restarted = await ws.ok<Builder>(["restart", "worker", "--json"]);
    expect(restarted).toMatchObject({ name: "worker", id: before.id, state: "working" });
    expect(restarted.pid).not.toBe(before.pid);
    expect(await ws.ok<string>(["stop", "worker"])).toContain("stopped worker: completed");
    const destroyed = await ws.ok<Builder>(["destroy", "worker", "--json"]);
    expect(destroyed).toMatchObject({ name: "worker", state: "destroyed" });
    const live = await ws.ok<Builder[]>(["status", "--json"]);
    expect(live.map((b) => b.name)).not.toContain("worker");
    const all = await ws.ok<Builder[]>(["status", "--all", "--json"]);
    expect(byName(all, "worker").state).toBe("destroyed");
  });

  it("errors carry the daemon's code: unknown builder (NOT_FOUND), destroyed builder (DESTROYED)", async () => {
    const missing = await ws.run(["stop", "nobody", "--json"]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout).error.code).toBe("NOT_FOUND");
    expect(missing.stderr).toContain('No builder named "nobody"');
    const gone = await ws.run(["restart", "worker"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/destroyed/);
  });
});

describe("mail", () => {
  it("the operator sends to a builder; mail <name> lists it; --unread filters", async () => {
    const sent = await ws.ok<Mail[]>(["send", "echo", "hello echo", "--type", "question", "--subject", "greeting", "--priority", "high", "--json"]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ from: "operator", to: "echo", type: "question", subject: "greeting", body: "hello echo", priority: "high" });
    const inbox = await ws.ok<Mail[]>(["mail", "echo", "--json"]);
    expect(inbox.map((m) => m.id)).toContain(sent[0]!.id);
    const unread = await ws.ok<Mail[]>(["mail", "echo", "--unread", "--json"]);
    expect(unread.every((m) => m.readAt === null)).toBe(true);
    const human = await ws.ok<string>(["mail", "echo"]);
    expect(human).toContain("operator → echo");
    expect(human).toContain("hello echo");
  });

  it("a body of - is read from standard input", async () => {
    const sent = await ws.ok<Mail[]>(["send", "echo", "-", "--json"], { input: "from stdin\nsecond line" });
    expect(sent[0]!.body).toBe("from stdin\nsecond line");
  });

  it("an agent's `troupe send parent` is authenticated by its TROUPE_TOKEN and reaches its parent", async () => {
    await ws.ok(["spawn", "mailer", "--parent", "lead", "--", node, agent("cli-mailer.mjs"), "result from mailer"]);
    const mail = await waitFor(async () => (await ws.ok<Mail[]>(["mail", "lead", "--json"])).find((m) => m.from === "mailer"), "the mailer's mail in lead's inbox");
    expect(mail).toMatchObject({ from: "mailer", to: "lead", type: "result", body: "result from mailer" });
  });

  it("an unknown recipient is an error to the sender, never a silent fallback", async () => {
    const result = await ws.run(["send", "nobody", "hi", "--json"]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error.code).toBe("UNKNOWN_RECIPIENT");
  });

  it("mail with no name lists the operator's inbox", async () => {
    const inbox = await ws.ok<Mail[]>(["mail", "--json"]);
    expect(Array.isArray(inbox)).toBe(true);
    for (const m of inbox) expect(m.to).toBe("operator");
  });
});

describe("maintenance commands", () => {
  it("doctor finds nothing wrong in a healthy workspace (exit 0)", async () => {
    expect(await ws.ok(["doctor", "--json"])).toMatchObject({ findings: [] });
    expect(await ws.ok<string>(["doctor"])).toContain("no problems");
    expect(await ws.ok(["doctor", "--fix", "--json"])).toMatchObject({ findings: [], fixed: [], failed: [] });
  });

  it("adopt finds no orphan pty host", async () => {
    expect(await ws.ok(["adopt", "--json"])).toEqual({ adopted: [], skipped: [] });
    expect(await ws.ok<string>(["adopt"])).toContain("no orphan pty hosts");
  });

  it("gc prunes the tombstones older than --older-than", async () => {
    expect(await ws.ok(["gc", "--json"])).toEqual({ removed: [] }); // default: 7 days
    const pruned = await ws.ok<{ removed: Array<{ name: string }> }>(["gc", "--older-than", "0", "--json"]);
    expect(pruned.removed.map((t) => t.name).sort()).toEqual(["ticker", "worker"]);
    const all = await ws.ok<Builder[]>(["status", "--all", "--json"]);
    expect(all.filter((b) => b.state === "destroyed")).toEqual([]);
  });
});

describe("the daemon dies, the builders do not", () => {
  it("after SIGKILL of the daemon, the next command starts a new one and the builders are still working with the same pids", async () => {
    const before = await ws.ok<Builder[]>(["status", "--json"]);
    const working = before.filter((b) => b.state === "working");
    expect(working.length).toBeGreaterThanOrEqual(2);
    process.kill(daemonPid, "SIGKILL");
    await waitFor(() => !isProcessAlive(daemonPid), "the killed daemon to be gone");
    for (const b of working) expect(isProcessAlive(b.pid!)).toBe(true);
    const result = await ws.run(["status", "--json"]);
    expect(result.code).toBe(0);
    const restarted = /started the daemon \(pid (\d+)\)/.exec(result.stderr);
    expect(restarted).not.toBeNull();
    const newPid = Number(restarted![1]);
    expect(newPid).not.toBe(daemonPid);
    daemonPid = newPid;
    const after: Builder[] = JSON.parse(result.stdout);
    for (const b of working) expect(byName(after, b.name)).toMatchObject({ id: b.id, state: "working", pid: b.pid, restarts: b.restarts });
  });

  it("daemon stop stops it cleanly (socket removed) and leaves the agents running", async () => {
    const before = (await ws.ok<Builder[]>(["status", "--json"])).filter((b) => b.state === "working");
    const stopped = await ws.ok<{ stopped: boolean; pid: number; how: string }>(["daemon", "stop", "--json"]);
    expect(stopped).toMatchObject({ stopped: true, pid: daemonPid, how: "clean" });
    expect(isProcessAlive(daemonPid)).toBe(false);
    expect(() => statSync(join(ws.repo, ".troupe", "run", "daemon.sock"))).toThrow();
    for (const b of before) expect(isProcessAlive(b.pid!)).toBe(true);
    const status = await ws.run(["daemon", "status", "--json"]);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, workspace: ws.repo });
    expect(await ws.ok(["daemon", "stop", "--json"])).toEqual({ running: false, stopped: false });
    // and the next command adopts them again
    const after = await ws.ok<Builder[]>(["status", "--json"]);
    for (const b of before) expect(byName(after, b.name)).toMatchObject({ state: "working", pid: b.pid });
  });
});

describe("signals", () => {
  it("SIGTERM shuts the daemon down cleanly: socket removed, agents left running, logged with its pid", async () => {
    // a daemon that logs (the test environment silences logs)
    await ws.ok(["daemon", "stop"]);
    const pid = (await ws.ok<{ pid: number }>(["daemon", "start", "--json"], { env: { TROUPE_LOG_LEVEL: "info" } })).pid;
    ws.track(pid);
    const working = (await ws.ok<Builder[]>(["status", "--json"])).filter((b) => b.state === "working");
    process.kill(pid, "SIGTERM");
    await waitFor(() => !isProcessAlive(pid), "the daemon to exit on SIGTERM");
    expect(() => statSync(join(ws.repo, ".troupe", "run", "daemon.sock"))).toThrow();
    for (const b of working) expect(isProcessAlive(b.pid!)).toBe(true);
    const log = (await import("node:fs")).readFileSync(join(ws.repo, ".troupe", "logs", "daemon.log"), "utf8");
    const stopped = log
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg?: string; pid?: number; why?: string })
      .filter((entry) => entry.pid === pid);
    expect(stopped.some((entry) => entry.msg?.startsWith("daemon stopping") && entry.why === "SIGTERM")).toBe(true);
    expect(stopped.some((entry) => entry.msg === "daemon stopped")).toBe(true);
  });
});

describe("spawn --shell", () => {
  it("runs the script with /bin/sh -c, because the user asked (pipes, &&, $VARS)", async () => {
    const script = 'printf "%s\\n" alpha beta | tr a-z A-Z && echo "agent=$TROUPE_AGENT" && exec sleep 100000';
    const builder = await ws.ok<Builder>(["spawn", "scripted", "--restart", "temporary", "--json", "--shell", script]);
    expect(builder).toMatchObject({ name: "scripted", state: "working", command: ["/bin/sh", "-c", script] });
    const out = await waitFor(async () => {
      const text = await ws.ok<string>(["logs", "scripted"]);
      return /agent=scripted/.test(text) ? text : null;
    }, "the script's output");
    expect(out).toMatch(/ALPHA\r?\nBETA/);
    await ws.ok(["destroy", "scripted", "--force"]);
  });
});
