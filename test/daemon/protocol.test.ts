/**
 * The daemon's socket protocol, spoken raw: hello and version mismatch,
 * validation of every request, fuzzed frames (random bytes, huge lines, wrong
 * types, unknown methods, JSON that is not an object) that must neither crash
 * the daemon nor change any state, event subscription, a second daemon on the
 * same workspace, and the short socket path of a deep workspace.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { git, waitFor } from "../helpers/workspace.js";
import { DAEMON_MAIN, RawConnection, TestWorkspace, agent, cliEnv } from "../e2e/harness.js";

const node = process.execPath;
let ws: TestWorkspace;
let socket = "";
let daemonPid = 0;

/** What must not change: every builder's identity, state and process. */
async function snapshot(): Promise<string> {
  const builders = await ws.ok<Array<Record<string, unknown>>>(["status", "--all", "--json"]);
  return JSON.stringify(builders.map((b) => [b.name, b.id, b.state, b.substate, b.pid, b.restarts, b.parent]));
}

async function helloed(): Promise<RawConnection> {
  const connection = await RawConnection.open(socket);
  const reply = await connection.request("hello", { protocol: 1 }, "h");
  expect(reply.result).toMatchObject({ protocol: 1, pid: daemonPid });
  return connection;
}

beforeAll(async () => {
  ws = new TestWorkspace("troupe-proto-");
  daemonPid = await ws.daemonPid();
  socket = join(ws.repo, ".troupe", "run", "daemon.sock");
  await ws.ok(["spawn", "steady", "--", node, agent("cli-quiet.mjs")]);
  await ws.ok(["spawn", "child", "--parent", "steady", "--", node, agent("cli-quiet.mjs")]);
});
afterAll(async () => {
  await ws.close();
});

describe("hello", () => {
  it("answers with the protocol, pid and workspace", async () => {
    const connection = await helloed();
    connection.close();
  });

  it("a protocol mismatch fails with the command that fixes it", async () => {
    const connection = await RawConnection.open(socket);
    const reply = await connection.request("hello", { protocol: 99 });
    expect(reply.error).toMatchObject({ code: -32001, data: { code: "PROTOCOL_MISMATCH" } });
    expect((reply.error as { message: string }).message).toBe("daemon speaks protocol 1, this CLI 99: run `troupe daemon stop` then retry");
    // still not helloed: nothing else is served
    const status = await connection.request("status", {}, 2);
    expect(status.error).toMatchObject({ code: -32001, data: { code: "PROTOCOL_MISMATCH" } });
    connection.close();
  });

  it("every other method needs hello first", async () => {
    const connection = await RawConnection.open(socket);
    const reply = await connection.request("spawn", { name: "sneaky", cmd: ["true"] });
    expect(reply.error).toMatchObject({ code: -32001 });
    connection.close();
    expect(await snapshot()).not.toContain("sneaky");
  });

  it("ignores unknown fields", async () => {
    const connection = await RawConnection.open(socket);
    connection.write(`${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hello", params: { protocol: 1, future: { x: 1 } }, extra: true })}\n`);
    expect((await connection.next()).result).toMatchObject({ protocol: 1 });
    const status = await connection.request("status", { all: false, colour: "blue" }, 2);
    expect(Array.isArray(status.result)).toBe(true);
    connection.close();
  });
});

describe("validation and fuzzing", () => {
  it("bad requests get error replies, the connection and the daemon keep serving, and nothing changes", async () => {
    const before = await snapshot();
    const connection = await helloed();
    const cases: Array<[string, number]> = [
      ["not json at all", -32700],
      ["{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":", -32700],
      ["[1,2,3]", -32600],
      ["[]", -32600],
      ["42", -32600],
      ["\"a string\"", -32600],
      ["null", -32600],
      ["true", -32600],
      [JSON.stringify({ id: 1, method: "status" }), -32600],
      [JSON.stringify({ jsonrpc: "1.0", id: 1, method: "status" }), -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: { x: 1 }, method: "status" }), -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: 12 }), -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "" }), -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "x".repeat(1000) }), -32600],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "rm -rf" }), -32601],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "__proto__" }), -32601],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "constructor" }), -32601],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "status", params: [true] }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "status", params: "all" }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "status", params: { all: "yes" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "destroy", params: {} }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "destroy", params: { name: 42 } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "destroy", params: { name: "../../etc" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "destroy", params: { name: "steady", force: "yes" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "stop", params: { name: ["steady"] } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: "bash" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: [] } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: [1, 2] } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: ["true"], env: { A: 1 } } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: ["true"], pty: "sometimes" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "spawn", params: { name: "x", cmd: ["true"], task: "t".repeat(1024 * 1024 + 1) } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "send", params: { to: "steady" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "send", params: { to: "steady", body: { evil: true } } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "send", params: { to: "steady", body: "x", priority: "now" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "send", params: { to: "steady", body: "x", auth: "token" } }), -32602],
      [JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hello", params: { protocol: "1" } }), -32602],
    ];
    for (const [frame, code] of cases) {
      connection.write(`${frame}\n`);
      const reply = await connection.next(`the reply to ${frame.slice(0, 60)}`);
      expect(reply.error, frame.slice(0, 80)).toMatchObject({ code });
      const data = (reply.error as { data: { code: string; message: string } }).data;
      expect(typeof data.code).toBe("string");
      expect(typeof data.message).toBe("string");
    }
    // still serving on the same connection
    const status = await connection.request("status", {}, "after");
    expect(Array.isArray(status.result)).toBe(true);
    connection.close();
    expect(await snapshot()).toBe(before);
  });

  it("application errors carry the TroupeError code and message in error.data", async () => {
    const connection = await helloed();
    const reply = await connection.request("stop", { name: "nobody" }, 7);
    expect(reply).toMatchObject({ id: 7, error: { code: -32000, data: { code: "NOT_FOUND" } } });
    expect((reply.error as { data: { message: string } }).data.message).toContain('No builder named "nobody"');
    connection.close();
  });

  it("random bytes, oversized lines and abrupt disconnects never crash the daemon", async () => {
    const before = await snapshot();
    // random garbage with newlines, on many connections at once
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const connection = await RawConnection.open(socket);
        for (let j = 0; j < 20; j++) connection.write(randomBytes(64 + ((i * 97 + j * 31) % 4000)));
        connection.write("\n");
        await waitFor(() => connection.messages.length > 0 || connection.closed, "an answer to garbage");
        connection.close();
      }),
    );
    // a line over 2 MiB (no newline yet): an error reply, then the connection is closed
    const big = await helloed();
    big.write(Buffer.alloc(2 * 1024 * 1024 + 10, 0x61));
    const reply = await big.next("the oversize error");
    expect(reply.error).toMatchObject({ code: -32600, data: { code: "FRAME_TOO_LARGE" } });
    await waitFor(() => big.closed, "the oversized connection to be closed");
    // a huge complete line in small chunks
    const chunked = await helloed();
    const line = `${JSON.stringify({ jsonrpc: "2.0", id: 1, method: "send", params: { to: "steady", body: "b".repeat(3 * 1024 * 1024) } })}\n`;
    for (let at = 0; at < line.length; at += 256 * 1024) chunked.write(line.slice(at, at + 256 * 1024));
    expect((await chunked.next("the chunked oversize error")).error).toMatchObject({ data: { code: "FRAME_TOO_LARGE" } });
    await waitFor(() => chunked.closed, "the chunked connection to be closed");
    // requests cut off mid-line by a disconnect
    for (let i = 0; i < 5; i++) {
      const cut = await RawConnection.open(socket);
      cut.write('{"jsonrpc":"2.0","id":1,"method":"hel');
      cut.close();
    }
    // a subscriber that disconnects at once
    const sub = await helloed();
    sub.write(`${JSON.stringify({ jsonrpc: "2.0", id: 2, method: "subscribe", params: {} })}\n`);
    sub.close();
    expect(isProcessAlive(daemonPid)).toBe(true);
    const fresh = await helloed();
    fresh.close();
    expect(await snapshot()).toBe(before);
  });
});

describe("subscribe", () => {
  it("streams supervisor events as JSON-RPC notifications", async () => {
    const connection = await helloed();
    expect((await connection.request("subscribe", {}, "s")).result).toEqual({ subscribed: true });
    await ws.ok(["spawn", "watched", "--", node, agent("cli-quiet.mjs")]);
    await waitFor(
      () => connection.messages.some((m) => (m as { method?: string; params?: { event?: { type: string; name: string; to: string } } }).params?.event?.to?.startsWith("working") && (m as { params: { event: { name: string } } }).params.event.name === "watched"),
      "a transition of watched to working",
    );
    const event = connection.messages.find((m) => (m as { method?: string }).method === "event") as { jsonrpc: string; method: string; params: { event: Record<string, unknown> } };
    expect(event.jsonrpc).toBe("2.0");
    expect(event).not.toHaveProperty("id");
    expect(event.params.event).toMatchObject({ type: "transition", name: "watched" });
    connection.close();
    await ws.ok(["destroy", "watched", "--force"]);
  });
});

describe("subscribe with filters", () => {
  it("types: only the kinds asked for (a chatty agent's output stays out); a bad type is refused", async () => {
    const connection = await helloed();
    const bad = await connection.request("subscribe", { types: ["transition", "gossip"] }, "bad");
    expect(bad.error).toMatchObject({ code: -32602, message: expect.stringContaining("types must be a non-empty array of transition, output, notice, mail") });
    expect((await connection.request("subscribe", { types: ["transition"] }, "s")).result).toEqual({ subscribed: true });
    await ws.ok(["spawn", "chatty", "--", node, agent("cli-echo.mjs")]);
    await waitFor(async () => (await ws.ok<string>(["logs", "chatty"])).length > 0, "chatty's first output");
    await ws.ok(["stop", "chatty"]);
    const events = () => connection.messages.filter((m) => (m as { method?: string }).method === "event").map((m) => (m as { params: { event: { type: string; name: string; to?: string } } }).params.event);
    await waitFor(() => events().some((e) => e.name === "chatty" && e.to === "completed"), "chatty's stop seen");
    expect(new Set(events().map((e) => e.type))).toEqual(new Set(["transition"]));
    connection.close();
    await ws.ok(["destroy", "chatty", "--force"]);
  });
});

describe("one daemon per workspace", () => {
  it("a second daemon on the same workspace refuses with the owner's pid and exits 1", async () => {
    const before = await snapshot();
    const second = spawn(node, [DAEMON_MAIN, "--workspace", ws.repo], { cwd: ws.repo, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    second.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => second.on("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr).toContain(`owned by pid ${daemonPid}`);
    // the first one is untouched and still serving
    expect(isProcessAlive(daemonPid)).toBe(true);
    const connection = await helloed();
    connection.close();
    expect(await snapshot()).toBe(before);
  });
});

describe("a workspace whose socket path would be too long", () => {
  it("listens on a short path under the runtime dir, recorded in daemon.sock.path, and the CLI finds it", async () => {
    const deep = new TestWorkspace("troupe-deep-");
    try {
      const parent = join(deep.repo, "a-rather-long-directory-name-for-testing", "and-another-one-to-go-past-the-limit");
      mkdirSync(parent, { recursive: true });
      const repo = join(parent, "repo");
      renameSync(join(deep.repo, ".git"), join(deep.repo, "dotgit-tmp"));
      mkdirSync(repo);
      renameSync(join(deep.repo, "dotgit-tmp"), join(repo, ".git"));
      git(repo, "checkout", "-q", "--", ".");
      const real = realpathSync(repo);
      const status = await deep.ok<{ socket: string; pid: number; workspace: string }>(["daemon", "start", "--json"], { cwd: repo });
      deep.track(status.pid);
      expect(status.workspace).toBe(real);
      expect(Buffer.byteLength(join(real, ".troupe", "run", "daemon.sock"))).toBeGreaterThan(100);
      expect(Buffer.byteLength(status.socket)).toBeLessThanOrEqual(100);
      expect(readFileSync(join(real, ".troupe", "run", "daemon.sock.path"), "utf8").trim()).toBe(status.socket);
      const builders = await deep.ok(["status", "--json"], { cwd: repo });
      expect(builders).toEqual([]);
      await deep.ok(["daemon", "stop"], { cwd: repo });
      expect(existsSync(status.socket)).toBe(false);
      rmSync(dirname(status.socket), { recursive: true, force: true });
    } finally {
      await deep.close();
    }
  });
});

describe("concurrent first commands", () => {
  it("several CLIs that find no daemon at once all succeed against one daemon", async () => {
    const fresh = new TestWorkspace("troupe-race-");
    try {
      const results = await Promise.all(Array.from({ length: 4 }, () => fresh.run(["status", "--json"])));
      for (const result of results) {
        expect(result.code, result.stderr).toBe(0);
        expect(JSON.parse(result.stdout)).toEqual([]);
      }
      const status = await fresh.ok<{ pid: number }>(["daemon", "status", "--json"]);
      fresh.track(status.pid);
      // exactly one daemon survived: the others lost the lock and exited
      const started = results.flatMap((r) => [...r.stderr.matchAll(/started the daemon \(pid (\d+)\)/g)].map((m) => Number(m[1])));
      expect(started).toContain(status.pid);
      await waitFor(() => started.filter((pid) => pid !== status.pid).every((pid) => !isProcessAlive(pid)), "the losing daemons to exit");
    } finally {
      await fresh.close();
    }
  });
});

describe("the CLI against a daemon it cannot use", () => {
  /** A stand-in daemon on the workspace's socket: `answer` decides the reply to each request. */
  async function fakeDaemon(repo: string, answer: (request: { id: number; method: string }) => object | null) {
    const { createServer } = await import("node:net");
    const dir = join(repo, ".troupe", "run");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const server = createServer((socket) => {
      let buffer = "";
      socket.on("data", (chunk) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const request = JSON.parse(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
          const reply = answer(request);
          if (reply) socket.write(`${JSON.stringify({ jsonrpc: "2.0", id: request.id, ...reply })}\n`);
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "daemon.sock"), resolve));
    return server;
  }

  it("a daemon of another protocol version: the CLI says what to run (exit 1)", async () => {
    const other = new TestWorkspace("troupe-mismatch-");
    const server = await fakeDaemon(other.repo, () => ({
      error: { code: -32001, message: "daemon speaks protocol 2, this CLI 1: run `troupe daemon stop` then retry", data: { code: "PROTOCOL_MISMATCH", message: "x", details: { daemon: 2, client: 1 } } },
    }));
    try {
      const result = await other.run(["status", "--json"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("troupe: daemon speaks protocol 2, this CLI 1: run `troupe daemon stop` then retry");
      expect(JSON.parse(result.stdout).error.code).toBe("PROTOCOL_MISMATCH");
    } finally {
      server.close();
      await other.close();
    }
  });

  it("a daemon that never answers: the CLI gives up after its deadline (exit 1)", async () => {
    const other = new TestWorkspace("troupe-wedged-");
    const server = await fakeDaemon(other.repo, () => null);
    try {
      const result = await other.run(["status"], { env: { TROUPE_HELLO_TIMEOUT_MS: "300" } });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("did not answer within 300 ms");
    } finally {
      server.close();
      await other.close();
    }
  });
});
