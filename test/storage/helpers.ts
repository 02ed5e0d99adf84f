import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";
import { openStore } from "../../src/storage/index.js";
import type { ActorRow, MailRow, OpenStoreOptions, Store } from "../../src/storage/index.js";

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const projectRoot = join(fixtures, "../../..");

const dirs: string[] = [];
const stores: Store[] = [];
const children: ChildProcess[] = [];

/** Everything a test made is undone after it, whether it passed or not. */
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  for (const store of stores.splice(0)) await store.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "troupe-storage-test-"));
  dirs.push(dir);
  return dir;
}

/** Opens a store that is closed after the test if the test did not close it. */
export async function open(dir: string, options: Partial<OpenStoreOptions> = {}): Promise<Store> {
  const store = await openStore({ dir, ...options });
  stores.push(store);
  return store;
}

export function actor(name: string, overrides: Partial<ActorRow> = {}): ActorRow {
  return {
    id: `id-${name}-${Math.random().toString(36).slice(2, 8)}`,
    name,
    role: "builder",
    parent: null,
    parentId: null,
    supervisorNode: "root",
    state: "working",
    substate: "running",
    snapshot: { value: { working: "running" }, context: { n: 1, nested: [1, "two", null, { three: true }] } },
    machineVersion: 3,
    worktree: `/ws/.troupe/worktrees/${name}`,
    branch: `troupe/${name}`,
    ptySocket: null,
    pty: true,
    pid: 4242,
    pidStartTime: 777,
    hostPid: null,
    hostStartTime: null,
    restarts: 2,
    restartTimes: [1000, 2000],
    spec: { agent: "shell", cmd: ["claude", "--resume"], env: { A: "b" }, restart: "transient", pty: "auto", policy: {} },
    intent: { op: "spawn", step: "worktree", at: 123 },
    createdAt: 1_000,
    updatedAt: 1_000,
    destroyedAt: null,
    lastActivityAt: 1_500,
    ...overrides,
  };
}

export function mail(id: string, overrides: Partial<MailRow> = {}): MailRow {
  return {
    id,
    from: "operator",
    fromId: null,
    to: "alice",
    toId: "id-alice",
    requestedTo: null,
    type: "message",
    subject: `subject ${id}`,
    body: `body of ${id} — ünïcødé ✓`,
    priority: "normal",
    threadId: `thread-${id}`,
    payload: { id, list: [1, 2, 3] },
    createdAt: 10,
    deliveredAt: null,
    readAt: null,
    ...overrides,
  };
}

export interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line matching, or rejects when the child exits first or the deadline passes. */
  waitLine(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
}

/** Runs a TypeScript fixture in a real Node process (through tsx), reading its stdout line by line. */
export function runFixture(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", join(fixtures, script), ...args], { cwd: projectRoot, stdio: ["pipe", "pipe", "pipe"] });
  children.push(proc);
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let buffered = "";
  let stderr = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on("exit", (code, signal) => {
      for (const listener of listeners) listener();
      resolve({ code, signal });
    });
  });
  const waitLine = (match: (line: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        const line = lines.find(match);
        if (line !== undefined) done(null, line);
        else if (proc.exitCode !== null || proc.signalCode !== null) done(new Error(`child exited (${proc.exitCode ?? proc.signalCode}) before ${what}; stderr: ${stderr.slice(-2000)}`));
      };
      const done = (error: Error | null, line?: string): void => {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      listeners.add(check);
      check();
    });
  return { proc, lines, exited, waitLine };
}

export { waitFor as until } from "../helpers/workspace.js";
