import { spawn } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectPtyHost, launchPtyHost, type HostStarted, type PtyHostClient, type PtyHostSpec } from "../../src/actors/index.js";
import { awaitExec } from "../../src/actors/pty-host/agent.js";
import { isTroupeError } from "../../src/shared/errors.js";
import { isProcessAlive, processStartTime } from "../../src/shared/proc.js";
import { FAKE_AGENT, LAUNCH_HOST, Transcript, agentEnv, cleanup, git, makeRepo, processesIn, tempDir, waitFor } from "./helpers.js";

let dir: string;
let recorded: Array<{ pid: number; start?: number | null }>;
let clients: PtyHostClient[];

beforeEach(() => {
  dir = tempDir("troupe-pty-");
  recorded = [];
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  await cleanup(dir, recorded);
});

function specFor(flags: string[], overrides: Partial<PtyHostSpec> = {}): PtyHostSpec {
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  return {
    builderId: "b-1",
    name: "alpha",
    cmd: [process.execPath, FAKE_AGENT, ...flags],
    cwd: work,
    env: agentEnv(),
    pty: "on",
    socketPath: join(dir, "run", "b-1.sock"),
    transcriptPath: join(dir, "logs", "alpha", "b-1.log"),
    exitStatusPath: join(dir, "run", "b-1.exit.json"),
    logPath: join(dir, "logs", "alpha", "pty-host.log"),
    ...overrides,
  };
}

async function launch(spec: PtyHostSpec): Promise<HostStarted> {
  const started = await launchPtyHost(spec);
  recorded.push({ pid: started.hostPid, start: started.hostStartTime }, { pid: started.pid, start: started.pidStartTime });
  return started;
}

async function connect(socketPath: string): Promise<PtyHostClient> {
  const client = await connectPtyHost(socketPath, { timeoutMs: 10_000 });
  clients.push(client);
  return client;
}

function nextExit(client: PtyHostClient) {
  return new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (client.exitStatus) return resolve(client.exitStatus);
    client.once("exit", resolve);
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

/** A node-pty that cannot load: a garbage native module (a real dlopen failure, like an ABI mismatch). */
function withUnloadablePty<T>(fn: () => Promise<T>): Promise<T> {
  const bad = join(dir, "broken-pty.node");
  writeFileSync(bad, "this is not an ELF shared object\n");
  const previous = process.env.TROUPE_PTY_MODULE;
  process.env.TROUPE_PTY_MODULE = bad;
  return fn().finally(() => {
    if (previous === undefined) delete process.env.TROUPE_PTY_MODULE;
    else process.env.TROUPE_PTY_MODULE = previous;
  });
}

describe("pty host", () => {
  it("runs the agent on a TTY in its cwd, streams to two clients and the transcript", async () => {
    const repo = join(dir, "repo");
    mkdirSync(repo);
    makeRepo(repo);
    git(repo, "checkout", "-q", "-b", "troupe/alpha");
    const spec = specFor(["--info", "--echo"], { cwd: repo });
    const started = await launch(spec);
    expect(started).toMatchObject({ pty: true, ptyError: null, socketPath: spec.socketPath });
    expect(isProcessAlive(started.hostPid, started.hostStartTime)).toBe(true);
    expect(isProcessAlive(started.pid, started.pidStartTime)).toBe(true);
    expect(lstatSync(spec.socketPath).mode & 0o777).toBe(0o600);

    // Each transcript starts the moment its client is up: output that arrives on `a`
    // while `b` connects would otherwise be missed (seen under load).
    const a = await connect(spec.socketPath);
    const outA = new Transcript(a);
    const b = await connect(spec.socketPath);
    const outB = new Transcript(b);
    expect(a.identity).toMatchObject({ builderId: "b-1", name: "alpha", hostPid: started.hostPid, pid: started.pid, pty: true, exit: null });
    const info = JSON.parse((await outA.waitFor(/INFO (\{.*\})/))[1]!);
    expect(info).toMatchObject({ isatty: true, stdinIsatty: true, cwd: repo, branch: "troupe/alpha", pid: started.pid });

    a.write("hello from a\r");
    await outA.waitFor(/ECHO:hello from a/);
    await outB.waitFor(/ECHO:hello from a/);
    await b.input("and from b\r");
    await outA.waitFor(/ECHO:and from b/);
    await waitFor(() => existsSync(spec.transcriptPath) && /ECHO:and from b/.test(readFileSync(spec.transcriptPath, "utf8")), "the transcript");
    expect(readFileSync(spec.transcriptPath, "utf8")).toMatch(/INFO .*ECHO:hello from a/s);
    expect((await a.status()).clients).toBe(2);
  });

  it("reports the agent started only once it runs its own program (its command line in /proc)", async () => {
    const spec = specFor(["--hang"]);
    const started = await launch(spec);
    expect(readFileSync(`/proc/${started.pid}/cmdline`, "latin1").split("\0").filter(Boolean)).toEqual(spec.cmd);
  });

  it("waits for a forked process to exec (awaitExec), however long it takes", async () => {
    // A stand-in for node-pty's fork: a shell that execs its real program only after a while.
    const child = spawn("sh", ["-c", "sleep 0.3; exec sleep 100"], { stdio: "ignore" });
    try {
      await new Promise((up) => child.once("spawn", up));
      const forkedFrom = readFileSync(`/proc/${child.pid}/cmdline`, "latin1");
      await awaitExec(child.pid!, forkedFrom);
      expect(readFileSync(`/proc/${child.pid}/cmdline`, "latin1")).toBe("sleep\0" + "100\0");
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("replays the scrollback (bounded) to a client that connects late", async () => {
    const spec = specFor(["--lines", "200", "--hang"], { scrollbackBytes: 1024 });
    await launch(spec);
    await waitFor(() => existsSync(spec.transcriptPath) && readFileSync(spec.transcriptPath, "utf8").includes("line 200"), "all output");
    const late = await connect(spec.socketPath);
    expect(late.scrollback).toContain("line 200\r\n");
    expect(late.scrollback).not.toContain("line 1\r\n");
    expect(Buffer.byteLength(late.scrollback)).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(late.scrollback)).toBeGreaterThan(900);
    // the transcript keeps everything
    expect(readFileSync(spec.transcriptPath, "utf8")).toContain("line 1\r\n");
  });

  it("delivers input, resizes the terminal, signals, and refuses to collect a live agent", async () => {
    const spec = specFor(["--echo", "--resize", "--ready"], { cols: 80, rows: 24 });
    const started = await launch(spec);
    const client = await connect(spec.socketPath);
    const out = new Transcript(client);
    await out.waitFor(/READY/);
    client.write("ping\r");
    await out.waitFor(/ECHO:ping/);
    await client.resize(132, 50);
    await out.waitFor(/RESIZE 132x50/);
    expect(await client.status()).toMatchObject({ cols: 132, rows: 50, pty: true, exit: null });

    const refused = await rejection(client.collect());
    expect(isTroupeError(refused)).toBe(true);
    expect(refused.message).toMatch(/still running/);
    expect(isTroupeError(await rejection(client.resize(0, 10)), "INVALID_ARGUMENT")).toBe(true);

    const exited = nextExit(client);
    await client.signal("SIGUSR2");
    expect(await exited).toMatchObject({ code: null, signal: "SIGUSR2" });
    await waitFor(() => !isProcessAlive(started.pid, started.pidStartTime), "the agent to be gone");
  });

  it("stop ends the agent's whole tree, including grandchildren that ignore SIGTERM", async () => {
    const spec = specFor(["--grandchild", "--grandchild-setsid", "--hang", "--ready"]);
    const started = await launch(spec);
    const client = await connect(spec.socketPath);
    const out = new Transcript(client);
    await out.waitFor(/READY/);
    const grandchildren = [...out.text.matchAll(/GRANDCHILD (\d+)/g)].map((match) => Number(match[1]));
    expect(grandchildren).toHaveLength(2);
    const refs = grandchildren.map((pid) => ({ pid, start: processStartTime(pid) }));
    recorded.push(...refs);
    for (const ref of refs) expect(isProcessAlive(ref.pid, ref.start)).toBe(true);

    const status = await client.stop({ killTimeoutMs: 10_000 });
    // On a pty, a stop hangs up first, as a closing terminal does: the agent ends on SIGHUP.
    expect(status).toMatchObject({ code: null, signal: "SIGHUP" });
    await waitFor(() => !isProcessAlive(started.pid, started.pidStartTime), "the agent to be gone");
    await waitFor(() => refs.every((ref) => !isProcessAlive(ref.pid, ref.start)), "the grandchildren to be gone");
    // the host is still there, holding the status until it is collected
    expect(isProcessAlive(started.hostPid, started.hostStartTime)).toBe(true);
    expect(await client.stop({ killTimeoutMs: 100 })).toEqual(status);
  });

  it("stop escalates to SIGKILL when the agent ignores SIGTERM", async () => {
    const spec = specFor(["--ignore-term", "--grandchild", "--hang", "--ready"]);
    const started = await launch(spec);
    const client = await connect(spec.socketPath);
    const out = new Transcript(client);
    await out.waitFor(/READY/);
    const grandchild = Number((await out.waitFor(/GRANDCHILD (\d+)/))[1]);
    const grandchildStart = processStartTime(grandchild);
    recorded.push({ pid: grandchild, start: grandchildStart });
    const status = await client.stop({ killTimeoutMs: 300 });
    expect(status).toMatchObject({ code: null, signal: "SIGKILL" });
    await out.waitFor(/IGNORED SIGTERM/);
    await waitFor(() => !isProcessAlive(started.pid, started.pidStartTime) && !isProcessAlive(grandchild, grandchildStart), "the tree to be gone");
  });

  it("keeps the exit status until collected, writes it to a file, kills leftovers, then exits", async () => {
    const spec = specFor(["--grandchild", "--print", "bye", "--exit", "3"]);
    const started = await launch(spec);
    const exitStatusFile = () => (existsSync(spec.exitStatusPath) ? (JSON.parse(readFileSync(spec.exitStatusPath, "utf8")) as { code: number; signal: string | null; builderId: string }) : null);
    await waitFor(exitStatusFile, "the exit status file");
    expect(exitStatusFile()).toMatchObject({ builderId: "b-1", code: 3, signal: null });

    // nothing of the agent survives its exit
    const client = await connect(spec.socketPath);
    const grandchild = Number(client.scrollback.match(/GRANDCHILD (\d+)/)![1]);
    recorded.push({ pid: grandchild });
    await waitFor(() => !isProcessAlive(grandchild), "the grandchild to be killed");
    expect(isProcessAlive(started.pid, started.pidStartTime)).toBe(false);

    // the status is kept for every client until one collects it
    expect(client.identity.exit).toMatchObject({ code: 3, signal: null });
    expect(client.scrollback).toContain("bye");
    const second = await connect(spec.socketPath);
    expect(second.identity.exit).toMatchObject({ code: 3 });
    expect(isProcessAlive(started.hostPid, started.hostStartTime)).toBe(true);

    const closed = second.closedPromise();
    expect(await client.collect()).toMatchObject({ code: 3, signal: null });
    await closed;
    await waitFor(() => !isProcessAlive(started.hostPid, started.hostStartTime), "the host to exit after collect");
    expect(existsSync(spec.socketPath)).toBe(false);
    expect(exitStatusFile()).toMatchObject({ code: 3 });
    expect(isTroupeError(await rejection(connectPtyHost(spec.socketPath)), "HOST_UNREACHABLE")).toBe(true);
  });

  it("exits by itself when nobody collects the exit status", async () => {
    const spec = specFor(["--exit", "0"], { collectTimeoutMs: 200 });
    const started = await launch(spec);
    await waitFor(() => !isProcessAlive(started.hostPid, started.hostStartTime), "the host to give up waiting for a collect");
    expect(existsSync(spec.socketPath)).toBe(false);
    expect(JSON.parse(readFileSync(spec.exitStatusPath, "utf8"))).toMatchObject({ code: 0, signal: null });
    expect(processesIn(dir)).toEqual([]);
  });

  it("outlives the process that launched it, and ignores SIGHUP", async () => {
    const spec = specFor(["--echo", "--ready"]);
    const launcher = spawn(process.execPath, [LAUNCH_HOST, JSON.stringify(spec)], { stdio: ["ignore", "pipe", "inherit"] });
    recorded.push({ pid: launcher.pid! });
    const launcherExited = new Promise((resolve) => launcher.once("exit", resolve));
    const line = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: launcher.stdout! });
      lines.once("line", resolve);
      launcher.once("exit", (code) => reject(new Error(`launcher exited (${code}) before reporting`)));
    });
    expect(line).toMatch(/^STARTED /);
    const started = JSON.parse(line.slice("STARTED ".length)) as HostStarted;
    recorded.push({ pid: started.hostPid, start: started.hostStartTime }, { pid: started.pid, start: started.pidStartTime });

    process.kill(launcher.pid!, "SIGKILL");
    await launcherExited;
    process.kill(started.hostPid, "SIGHUP");

    const client = await connect(spec.socketPath);
    expect(client.identity).toMatchObject({ hostPid: started.hostPid, hostStartTime: started.hostStartTime, pid: started.pid, exit: null });
    expect(isProcessAlive(started.pid, started.pidStartTime)).toBe(true);
    const out = new Transcript(client);
    client.write("still here\r");
    await out.waitFor(/ECHO:still here/);
  });

  it("refuses a second host on a live socket, and replaces a stale socket file", async () => {
    const spec = specFor(["--hang"]);
    // a stale socket: its owner died without removing it
    mkdirSync(join(dir, "run"), { recursive: true });
    const squatter = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(spec.socketPath)}, () => console.log("up")); setInterval(() => {}, 1e6)`], { stdio: ["ignore", "pipe", "inherit"] });
    recorded.push({ pid: squatter.pid! });
    await new Promise((resolve) => squatter.stdout!.once("data", resolve));
    const squatterExited = new Promise((resolve) => squatter.once("exit", resolve));
    process.kill(squatter.pid!, "SIGKILL");
    await squatterExited;
    expect(lstatSync(spec.socketPath).isSocket()).toBe(true);
    const stale = await rejection(connectPtyHost(spec.socketPath, { timeoutMs: 2_000 }));
    expect(isTroupeError(stale, "HOST_UNREACHABLE")).toBe(true);
    expect(stale.message).toMatch(/refused/);

    const started = await launch(spec);
    const second = await rejection(launchPtyHost({ ...spec, builderId: "b-2", logPath: join(dir, "logs", "second.log") }));
    expect(isTroupeError(second, "SPAWN_FAILED")).toBe(true);
    expect(second.message).toMatch(/already serves/);
    const client = await connect(spec.socketPath);
    expect(client.identity).toMatchObject({ builderId: "b-1", hostPid: started.hostPid });
    expect(isProcessAlive(started.pid, started.pidStartTime)).toBe(true);
  });

  it("signals the whole tree on request", async () => {
    const spec = specFor(["--grandchild", "--hang", "--ready"]);
    const started = await launch(spec);
    const client = await connect(spec.socketPath);
    const out = new Transcript(client);
    await out.waitFor(/READY/);
    const grandchild = Number((await out.waitFor(/GRANDCHILD (\d+)/))[1]);
    const grandchildStart = processStartTime(grandchild);
    recorded.push({ pid: grandchild, start: grandchildStart });
    const exited = nextExit(client);
    await client.signal("KILL", { tree: true });
    expect(await exited).toMatchObject({ code: null, signal: "SIGKILL" });
    await waitFor(() => !isProcessAlive(started.pid, started.pidStartTime) && !isProcessAlive(grandchild, grandchildStart), "the tree to be gone");
    expect(isTroupeError(await rejection(client.signal("SIGTERM")), "INVALID_ARGUMENT")).toBe(true);
    expect(isTroupeError(await rejection(client.signal("SIGNOPE")), "INVALID_ARGUMENT")).toBe(true);
  });

  it("rejects HOST_UNREACHABLE when no host listens", async () => {
    const error = await rejection(connectPtyHost(join(dir, "nobody.sock"), { timeoutMs: 2_000 }));
    expect(isTroupeError(error, "HOST_UNREACHABLE")).toBe(true);
    expect(error.message).toContain(join(dir, "nobody.sock"));
  });
});

describe("pty host failures leave nothing behind", () => {
  it('pty "on" with an unloadable node-pty rejects PTY_UNAVAILABLE naming the ABI and the fix', async () => {
    const spec = specFor(["--hang"]);
    const error = await withUnloadablePty(() => rejection(launchPtyHost(spec)));
    expect(isTroupeError(error, "PTY_UNAVAILABLE")).toBe(true);
    expect(error.message).toContain(`ABI ${process.versions.modules}`);
    expect(error.message).toContain(process.version);
    expect(error.message).toContain(process.execPath);
    expect(error.message).toMatch(/npm rebuild @lydell\/node-pty/);
    expect(error.message).toMatch(/pty: "auto"/);
    expect(error.details).toMatchObject({ abi: process.versions.modules, execPath: process.execPath });
    const hostPid = error.details!.hostPid as number;
    expect(hostPid).toBeGreaterThan(0);
    expect(isProcessAlive(hostPid)).toBe(false);
    expect(existsSync(spec.socketPath)).toBe(false);
    expect(processesIn(dir)).toEqual([]);
  });

  it('pty "auto" with an unloadable node-pty falls back to pipes, flagged, and still works', async () => {
    const spec = specFor(["--info", "--echo", "--grandchild"], { pty: "auto" });
    const started = await withUnloadablePty(() => launch(spec));
    expect(started.pty).toBe(false);
    expect(started.ptyError).toMatchObject({ code: "PTY_UNAVAILABLE", abi: process.versions.modules, execPath: process.execPath });
    const client = await connect(spec.socketPath);
    expect(client.identity).toMatchObject({ pty: false, pid: started.pid });
    expect(client.identity.ptyError?.code).toBe("PTY_UNAVAILABLE");
    const out = new Transcript(client);
    expect(JSON.parse((await out.waitFor(/INFO (\{.*\})/))[1]!)).toMatchObject({ isatty: false, cwd: spec.cwd });
    const grandchild = Number((await out.waitFor(/GRANDCHILD (\d+)/))[1]);
    const grandchildStart = processStartTime(grandchild);
    recorded.push({ pid: grandchild, start: grandchildStart });
    client.write("over a pipe\n");
    await out.waitFor(/ECHO:over a pipe/);
    expect(await client.stop({ killTimeoutMs: 5_000 })).toMatchObject({ signal: "SIGTERM" });
    await waitFor(() => !isProcessAlive(started.pid, started.pidStartTime) && !isProcessAlive(grandchild, grandchildStart), "the tree to be gone");
    await client.collect();
    await waitFor(() => !isProcessAlive(started.hostPid, started.hostStartTime), "the host to exit");
  });

  it('pty "off" runs on pipes without trying node-pty', async () => {
    const spec = specFor(["--info", "--exit", "0"], { pty: "off" });
    const started = await withUnloadablePty(() => launch(spec));
    expect(started).toMatchObject({ pty: false, ptyError: null });
    const client = await connect(spec.socketPath);
    const out = new Transcript(client);
    expect((await nextExit(client)).code).toBe(0);
    expect(JSON.parse((await out.waitFor(/INFO (\{.*\})/))[1]!)).toMatchObject({ isatty: false });
    await client.collect();
  });

  it("a command that does not exist rejects SPAWN_FAILED", async () => {
    for (const cmd of [["no-such-agent-command-xyz"], [join(dir, "missing", "agent")]]) {
      const spec = specFor([], { cmd });
      const error = await rejection(launchPtyHost(spec));
      expect(isTroupeError(error, "SPAWN_FAILED")).toBe(true);
      expect(error.message).toContain(cmd[0]);
      expect(isProcessAlive(error.details!.hostPid as number)).toBe(false);
      expect(existsSync(spec.socketPath)).toBe(false);
      expect(processesIn(dir)).toEqual([]);
    }
    const badCwd = specFor(["--hang"], { cwd: join(dir, "no-such-dir") });
    const error = await rejection(launchPtyHost(badCwd));
    expect(isTroupeError(error, "SPAWN_FAILED")).toBe(true);
    expect(error.message).toContain("no-such-dir");
    expect(processesIn(dir)).toEqual([]);
  });

  it("a host that does not confirm in time is killed with its agent", async () => {
    const spec = specFor(["--hang"]);
    const error = await rejection(launchPtyHost(spec, { startTimeoutMs: 1 }));
    expect(isTroupeError(error, "SPAWN_FAILED")).toBe(true);
    expect(error.message).toMatch(/did not confirm/);
    expect(isProcessAlive(error.details!.hostPid as number)).toBe(false);
    expect(existsSync(spec.socketPath)).toBe(false);
    expect(processesIn(dir)).toEqual([]);
  });

  it("an invalid spec is refused before anything starts", async () => {
    const error = await rejection(launchPtyHost(specFor([], { cmd: [] })));
    expect(isTroupeError(error, "INVALID_ARGUMENT")).toBe(true);
    expect(isTroupeError(await rejection(launchPtyHost(specFor([], { socketPath: "relative.sock" }))), "INVALID_ARGUMENT")).toBe(true);
    expect(processesIn(dir)).toEqual([]);
  });
});
