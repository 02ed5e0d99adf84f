/**
 * The agent process of a pty host: on a pseudo-terminal through node-pty
 * (loaded lazily, so a broken native module is a reported error, not a crash),
 * or on plain pipes.
 */
import type { ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { PtyErrorInfo, PtyHostSpec } from "./protocol.js";
import { hostFailure } from "./failure.js";
import { hostLog } from "./host-log.js";
import { errorText, signalName } from "./host-io.js";

/** After the agent exited on pipes, how long to wait for its output streams to drain. */
const DRAIN_TIMEOUT_MS = 1_000;
/** How long a forked agent may take to exec its program before the host stops waiting. */
const EXEC_TIMEOUT_MS = 2_000;

export interface Agent {
  readonly pid: number;
  readonly pty: boolean;
  write(data: string): void;
  resize(cols: number, rows: number): void;
  /** Stops reading its output (it blocks once the kernel's buffer is full), until `resume`. */
  pause(): void;
  resume(): void;
  /** Resolves once every byte of output the agent wrote has been delivered. */
  drained(): Promise<void>;
}

export interface AgentEvents {
  output(data: string): void;
  exit(code: number | null, signal: string | null): void;
}

export interface PtyModule {
  spawn(
    file: string,
    args: string[],
    options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string> },
  ): {
    pid: number;
    onData(listener: (data: string) => void): unknown;
    onExit(listener: (event: { exitCode: number; signal?: number }) => void): unknown;
    write(data: string): void;
    resize(cols: number, rows: number): void;
    pause(): void;
    resume(): void;
  };
}

let loadedPty: { module: PtyModule } | { error: PtyErrorInfo } | null = null;

/** node-pty, loaded once (a spare host loads it while it waits for work). */
export function loadPty(): { module: PtyModule } | { error: PtyErrorInfo } {
  loadedPty ??= requirePty();
  return loadedPty;
}

function requirePty(): { module: PtyModule } | { error: PtyErrorInfo } {
  const configured = process.env.TROUPE_PTY_MODULE;
  const name = configured && configured.trim() !== "" ? configured : "@lydell/node-pty";
  const target = name.startsWith(".") ? resolvePath(name) : name;
  try {
    const require = createRequire(import.meta.url);
    const loaded = require(target) as Partial<PtyModule>;
    if (typeof loaded?.spawn !== "function") throw new Error(`${target} does not export spawn()`);
    return { module: loaded as PtyModule };
  } catch (error) {
    const abi = process.versions.modules ?? "unknown";
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    const packageName = name.startsWith("@lydell/") || !isAbsolute(target) ? name : "@lydell/node-pty";
    return {
      error: {
        code: "PTY_UNAVAILABLE",
        message:
          `node-pty could not be loaded by Node ${process.version} (ABI ${abi}): ${reason}. ` +
          `Run \`npm rebuild ${packageName}\` with ${process.execPath}, or spawn with pty: "auto" to fall back to pipes.`,
        abi,
        execPath: process.execPath,
      },
    };
  }
}

export function spawnOnPty(ptyModule: PtyModule, file: string, spec: PtyHostSpec, size: { cols: number; rows: number }, events: AgentEvents): Agent {
  let term: ReturnType<PtyModule["spawn"]>;
  try {
    term = ptyModule.spawn(file, spec.cmd.slice(1), {
      name: spec.env.TERM ?? "xterm-256color",
      cols: size.cols,
      rows: size.rows,
      cwd: spec.cwd,
      env: spec.env,
    });
  } catch (error) {
    throw hostFailure("SPAWN_FAILED", `Could not start ${JSON.stringify(spec.cmd[0])} on a pty: ${errorText(error)}`, { cmd: spec.cmd });
  }
  term.onData((data) => events.output(data));
  // node-pty reports a death by signal as (exitCode 0, signal n).
  term.onExit(({ exitCode, signal }) => events.exit(signal ? null : exitCode, signal ? signalName(signal) : null));
  return {
    pid: term.pid,
    pty: true,
    write: (data) => term.write(data),
    resize: (cols, rows) => term.resize(cols, rows),
    pause: () => term.pause(),
    resume: () => term.resume(),
    // node-pty emits onExit only after its read side closed.
    drained: () => Promise.resolve(),
  };
}

/**
 * node-pty returns as soon as it forked: until the child's execve, /proc shows
 * this host's own command line and environment under the agent's pid (seen
 * under load: an agent missing from the process table right after `working`).
 * Waiting for the exec, a few milliseconds at most, makes "the agent runs" true
 * when the host reports it, for anyone who looks (doctor, ps, tests).
 * (child_process.spawn needs no wait: libuv returns only after the exec.)
 */
export async function awaitExec(pid: number, forkedFrom: string | null = ownCommandLine()): Promise<void> {
  if (forkedFrom === null) return; // no /proc: nothing to look at, nothing to wait for
  const deadline = Date.now() + EXEC_TIMEOUT_MS;
  // The exec usually lands within a millisecond: look again at once a few times
  // (a timer would add a millisecond or more), then every millisecond.
  for (let looks = 0; ; looks++) {
    let theirs: string;
    try {
      theirs = readFileSync(`/proc/${pid}/cmdline`, "latin1");
    } catch {
      return; // already gone: its exit is reported as usual
    }
    // Empty while the exec swaps the program in, and for a zombie (exited before its exec).
    if (theirs === "" && isZombie(pid)) return;
    if (theirs !== "" && theirs !== forkedFrom) return;
    if (Date.now() >= deadline) {
      hostLog("warn", "the agent has not exec'd its program yet; reporting it started anyway", { pid, waitedMs: EXEC_TIMEOUT_MS });
      return;
    }
    await (looks < 50 ? new Promise((next) => setImmediate(next)) : sleep(1));
  }
}

function isZombie(pid: number): boolean {
  try {
    // "pid (comm) S …": the state follows the last ")" (comm may hold parentheses)
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return /^\s*[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 1));
  } catch {
    return true; // gone
  }
}

function ownCommandLine(): string | null {
  try {
    return readFileSync("/proc/self/cmdline", "latin1");
  } catch {
    return null;
  }
}

export async function spawnOnPipes(file: string, spec: PtyHostSpec, events: AgentEvents): Promise<Agent> {
  // Loaded only on this path: it costs the pty path ~1 MB of RSS for nothing.
  const { spawn: spawnChild } = await import("node:child_process");
  // detached: the agent leads its own session and process group, as on a pty.
  const child: ChildProcess = spawnChild(file, spec.cmd.slice(1), {
    argv0: spec.cmd[0],
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => reject(hostFailure("SPAWN_FAILED", `Could not start ${JSON.stringify(spec.cmd[0])}: ${errorText(error)}`, { cmd: spec.cmd })));
  });
  child.on("error", (error) => hostLog("warn", "agent process error", { err: errorText(error) }));
  child.stdin!.on("error", (error) => hostLog("warn", "agent stdin error", { err: errorText(error) }));
  let open = 2;
  let onDrained: (() => void) | null = null;
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (data: string) => events.output(data));
    stream.on("close", () => {
      if (--open === 0) onDrained?.();
    });
  }
  child.on("exit", (code, signal) => events.exit(signal ? null : code, signal ?? null));
  return {
    pid: child.pid!,
    pty: false,
    write: (data) => {
      child.stdin!.write(data);
    },
    resize: () => undefined,
    pause: () => {
      child.stdout!.pause();
      child.stderr!.pause();
    },
    resume: () => {
      child.stdout!.resume();
      child.stderr!.resume();
    },
    drained: () =>
      open === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, DRAIN_TIMEOUT_MS);
            onDrained = () => {
              clearTimeout(timer);
              resolve();
            };
          }),
  };
}

export function resolveCommand(spec: PtyHostSpec): string {
  let cwdStat;
  try {
    cwdStat = statSync(spec.cwd);
  } catch {
    throw hostFailure("SPAWN_FAILED", `The working directory ${spec.cwd} does not exist.`, { cwd: spec.cwd });
  }
  if (!cwdStat.isDirectory()) throw hostFailure("SPAWN_FAILED", `The working directory ${spec.cwd} is not a directory.`, { cwd: spec.cwd });
  const name = spec.cmd[0]!;
  const candidates = name.includes("/")
    ? [resolvePath(spec.cwd, name)]
    : (spec.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":").map((dir) => resolvePath(spec.cwd, dir === "" ? "." : dir, name));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw hostFailure(
    "SPAWN_FAILED",
    name.includes("/")
      ? `Command not found or not executable: ${name} (in ${spec.cwd}).`
      : `Command not found: ${name} is not an executable file in any directory of the agent's PATH (${spec.env.PATH ?? "unset"}).`,
    { cmd: spec.cmd },
  );
}

/** Refuses to replace a socket another live host still serves; removes a stale one. */
