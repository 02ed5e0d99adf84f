/**
 * Drives the real `troupe` binary (bin/troupe.js → dist/) as a subprocess
 * against a real daemon. Every daemon a test starts is stopped by its pid,
 * and every process left in a test repository is ended by cleanupWorkspace.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isProcessAlive } from "../../src/shared/proc.js";
import { cleanupWorkspace, makeRepo, waitFor } from "../helpers/workspace.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(ROOT, "bin", "troupe.js");
export const DAEMON_MAIN = join(ROOT, "dist", "daemon", "main.js");
export const AGENTS = join(ROOT, "test", "fixtures", "agents");
export const agent = (name: string): string => join(AGENTS, name);

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  /** Node binary running the CLI (default: this one). */
  node?: string;
  /** Extra node flags, e.g. ["--import", hook]. */
  nodeArgs?: string[];
  input?: string;
  timeoutMs?: number;
}

/** The environment of a CLI run: ours, without any troupe identity we may have inherited. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("TROUPE_") && key !== "TROUPE_LOG_LEVEL") delete env[key];
  delete env.NO_COLOR;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function cli(args: string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      options.node ?? process.execPath,
      [...(options.nodeArgs ?? []), BIN, ...args],
      { cwd: options.cwd, env: cliEnv(options.env), encoding: "utf8", timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : null) : 0;
        if (error && code === null && !(error as { signal?: unknown }).signal) return reject(error);
        resolvePromise({ code, signal: ((error as { signal?: NodeJS.Signals } | null)?.signal ?? null) as NodeJS.Signals | null, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Runs the CLI and expects exit 0; returns stdout parsed as JSON when `--json` is among the args. */
export async function ok<T = unknown>(args: string[], options: CliOptions): Promise<T> {
  const result = await cli(args, options);
  if (result.code !== 0) throw new Error(`troupe ${args.join(" ")} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return (args.includes("--json") ? JSON.parse(result.stdout) : result.stdout) as T;
}

/** A test repository with its daemon(s); `close()` stops them by pid and removes everything. */
export class TestWorkspace {
  readonly repo: string;
  private readonly daemonPids = new Set<number>();

  constructor(prefix = "troupe-cli-") {
    this.repo = makeRepo(prefix);
  }

  run(args: string[], options: Partial<CliOptions> = {}): Promise<CliResult> {
    return cli(args, { cwd: this.repo, ...options }).then((result) => {
      this.noteDaemon(result.stderr);
      return result;
    });
  }

  async ok<T = unknown>(args: string[], options: Partial<CliOptions> = {}): Promise<T> {
    const result = await this.run(args, options);
    if (result.code !== 0) throw new Error(`troupe ${args.join(" ")} exited ${result.code}: ${result.stderr}${result.stdout}`);
    return (args.includes("--json") ? JSON.parse(result.stdout) : result.stdout) as T;
  }

  /** The running daemon's pid (starting it if needed). */
  async daemonPid(): Promise<number> {
    const status = await this.ok<{ pid: number }>(["daemon", "start", "--json"]);
    this.daemonPids.add(status.pid);
    return status.pid;
  }

  track(pid: number): void {
    this.daemonPids.add(pid);
  }

  private noteDaemon(stderr: string): void {
    for (const match of stderr.matchAll(/started the daemon \(pid (\d+)\)/g)) this.daemonPids.add(Number(match[1]));
  }

  async close(): Promise<void> {
    for (const pid of this.daemonPids) {
      if (!isProcessAlive(pid)) continue;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // gone
      }
      await waitFor(() => !isProcessAlive(pid), `daemon ${pid} to exit`, 15_000).catch(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      });
    }
    cleanupWorkspace(this.repo);
  }
}

/** A raw connection to a daemon socket, for protocol-level tests. */
export class RawConnection {
  readonly socket: Socket;
  private buffer = "";
  readonly messages: unknown[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line.trim()) this.messages.push(JSON.parse(line));
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => (this.closed = true));
  }

  static open(path: string): Promise<RawConnection> {
    return new Promise((resolvePromise, reject) => {
      const socket = createConnection(path);
      socket.once("connect", () => resolvePromise(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  async next(what = "a reply", timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const message = await waitFor(() => this.messages.shift(), what, timeoutMs, 5);
    return message as Record<string, unknown>;
  }

  async request(method: string, params: unknown, id: number | string = 1): Promise<Record<string, unknown>> {
    this.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
    return this.next(`reply to ${method}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---- a second Node version ---------------------------------------------------------

const NODE22_PREFIX = join(ROOT, "node_modules", ".cache", "troupe-node22");
const NODE22_BIN = join(NODE22_PREFIX, "node_modules", "node", "bin", "node");

/**
 * The binary of Node 22, installed once from the npm registry (the `node`
 * package) into node_modules/.cache/troupe-node22. Concurrent callers (vitest
 * workers) serialise on a lock directory.
 */
export async function node22(): Promise<string> {
  if (existsSync(NODE22_BIN)) return NODE22_BIN;
  mkdirSync(NODE22_PREFIX, { recursive: true });
  const lock = join(NODE22_PREFIX, ".installing");
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(NODE22_BIN)) return NODE22_BIN;
      // a lock left by an install that died long ago
      if (Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 5 * 60_000) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (!existsSync(NODE22_BIN)) {
      writeFileSync(join(NODE22_PREFIX, "package.json"), '{ "name": "troupe-node22-cache", "private": true }\n');
      await new Promise<void>((resolvePromise, reject) => {
        const child = spawn("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", NODE22_PREFIX, "node@22"], { stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", reject);
        child.on("exit", (code) => (code === 0 && existsSync(NODE22_BIN) ? resolvePromise() : reject(new Error(`npm install node@22 failed (${code}): ${output}`))));
      });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return NODE22_BIN;
}

export function readText(path: string): string {
  return readFileSync(path, "utf8");
}
