/**
 * `troupe viz` in a real browser: Debian's Chromium (never a downloaded one)
 * driven by playwright-core, against the real binary and a real daemon. The
 * page must show the chart, follow the daemon's transitions live (no reload),
 * show a builder's history, fetch nothing from anywhere else, and the server
 * must refuse requests without the token or with a foreign Host header.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builderMachineDefinition } from "../../src/machines/definition.js";
import { isProcessAlive } from "../../src/shared/proc.js";
import { stateLabel } from "../../src/viz/export.js";
import { processesOfWorkspace, waitFor } from "../helpers/workspace.js";
import { BIN, TestWorkspace, cliEnv } from "../e2e/harness.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const node = process.execPath;
const def = builderMachineDefinition();

let ws: TestWorkspace;
let viz: ChildProcess | null = null;
let vizOut = "";
let vizExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
let url = "";
let port = 0;
let token = "";
let profile = "";
let context: BrowserContext | null = null;
let page: Page;
const requested: string[] = [];
const pageErrors: string[] = [];

/** A request with exactly this Host header (null: none at all). */
function httpGet(path: string, host: string | null, method = "GET"): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, setHost: false, headers: host === null ? {} : { Host: host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Waits in the page (no reload, no polling from here) for `selector`. */
async function shows(selector: string): Promise<void> {
  await page.locator(selector).first().waitFor({ state: "attached", timeout: 30_000 });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; .ci/run does)`);
  ws = new TestWorkspace("troupe-viz-");
  await ws.daemonPid();
  viz = spawn(node, [BIN, "viz", "--port", "0", "--no-open"], { cwd: ws.repo, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
  viz.stdout!.setEncoding("utf8").on("data", (chunk: string) => (vizOut += chunk));
  viz.stderr!.setEncoding("utf8").on("data", (chunk: string) => (vizOut += chunk));
  viz.on("exit", (code, signal) => (vizExit = { code, signal }));
  const match = await waitFor(() => {
    if (vizExit) throw new Error(`troupe viz exited early (${JSON.stringify(vizExit)}): ${vizOut}`);
    return /http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]+)/.exec(vizOut);
  }, "troupe viz to print its URL", 30_000);
  url = match[0];
  port = Number(match[1]);
  token = match[2]!;

  profile = mkdtempSync(join(tmpdir(), "troupe-viz-chromium-"));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("request", (req) => requested.push(req.url()));
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(url);
});

afterAll(async () => {
  await Promise.race([context?.close(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]).catch(() => undefined);
  // Whatever is left of the browser (its command lines name the profile dir), by pid.
  if (profile) {
    for (const pid of processesOfWorkspace(profile)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(profile, { recursive: true, force: true });
  }
  if (viz?.pid && !vizExit && isProcessAlive(viz.pid)) viz.kill("SIGKILL");
  await ws?.close();
});

describe("troupe viz in Chromium", () => {
  it("prints a 127.0.0.1 URL with a token", () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=.{32}$/);
  });

  it("shows the statechart as SVG, every state named", async () => {
    await page.locator("#chart svg").waitFor({ state: "visible", timeout: 30_000 });
    const text = (await page.locator("#chart svg").textContent()) ?? "";
    for (const state of def.states) {
      expect(text, state.id).toContain(stateLabel(state.id));
      expect(await page.locator(`#chart svg g[id="s:${state.id}"]`).count(), state.id).toBe(1);
    }
    await shows('#conn[data-connected="true"]');
    await shows("#empty:not([hidden])");
  });

  it("shows a spawned builder working, live, without a reload", async () => {
    await page.evaluate("window.__sameDocument = 42");
    await ws.ok(["spawn", "x", "--", node, "-e", "setInterval(()=>{},1e9)"]);
    await shows('li[data-builder="x"][data-top="working"]');
    expect(await page.locator('li[data-builder="x"] .state').textContent()).toMatch(/^working/);
    // the state it is in is marked on the chart, with a count
    await shows('#chart g[id="s:working"].occupied');
    const leaf = page.locator('#chart g.node.occupied[id^="s:working."]');
    expect(await leaf.getAttribute("data-count")).toBe("1");
    expect(await page.evaluate("window.__sameDocument")).toBe(42);
  });

  it("clicking a builder selects its state and shows its history", async () => {
    await page.locator('li[data-builder="x"] .name').click();
    await shows('li[data-builder="x"].selected');
    await shows('#chart g.node.selected[id^="s:working."]');
    await shows('#history tr[data-history="SPAWN"]');
    await shows('#history tr[data-history="STARTED"]');
    expect(await page.locator("#details-title").textContent()).toBe("x");
  });

  it("shows it completed after `troupe stop`, history included, without a reload", async () => {
    await ws.ok(["stop", "x"]);
    await shows('li[data-builder="x"][data-top="completed"]');
    await shows('#chart g[id="s:completed"].occupied');
    await shows('#chart g.node.selected[id="s:completed"]');
    await shows('#history tr[data-history="STOPPED"]');
    expect(await page.locator('#chart g[id="s:working"].occupied').count()).toBe(0);
    expect(await page.evaluate("window.__sameDocument")).toBe(42);
  });

  it("takes a screenshot", async () => {
    const file = join(profile, "viz.png");
    await page.screenshot({ path: file });
    const png = readFileSync(file);
    expect(png.length).toBeGreaterThan(10_000);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  });

  it("loaded nothing from anywhere but the server, and threw nothing", () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((u) => !u.startsWith(`http://127.0.0.1:${port}/`) && !u.startsWith("data:"))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it("follows the daemon when it goes away and comes back", async () => {
    await ws.ok(["daemon", "stop"]);
    await shows('#conn[data-connected="false"]');
    await ws.daemonPid();
    await shows('#conn[data-connected="true"]');
    await shows('li[data-builder="x"][data-top="completed"]');
  });
});

describe("the server's guards (plain node http)", () => {
  it("refuses a request without the token, or with a wrong one (403)", async () => {
    const host = `127.0.0.1:${port}`;
    expect((await httpGet("/", host)).status).toBe(403);
    expect((await httpGet("/events", host)).status).toBe(403);
    expect((await httpGet("/api/builders", host)).status).toBe(403);
    // one character off (never the same character: a token may well end in "x")
    const wrong = token.slice(0, -1) + (token.endsWith("x") ? "y" : "x");
    expect(wrong).not.toBe(token);
    expect((await httpGet(`/?token=${wrong}`, host)).status).toBe(403);
    expect((await httpGet(`/api/history?name=x&token=`, host)).status).toBe(403);
  });

  it("refuses a foreign Host header even with the token (403: DNS rebinding)", async () => {
    for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`, `127.0.0.1:${port}.evil.example`]) {
      expect((await httpGet(`/?token=${token}`, host)).status, host).toBe(403);
    }
    // no Host at all: node's HTTP/1.1 parser refuses it before we are asked (400)
    expect((await httpGet(`/?token=${token}`, null)).status).toBe(400);
  });

  it("serves the page to 127.0.0.1 and localhost with a strict CSP; GET only", async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const res = await httpGet(`/?token=${token}`, host);
      expect(res.status).toBe(200);
      expect(String(res.headers["content-security-policy"])).toMatch(/default-src 'none'/);
      expect(res.body).toContain("<svg");
      expect(res.body).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\/(?!www\.w3\.org)/);
    }
    expect((await httpGet(`/?token=${token}`, `127.0.0.1:${port}`, "POST")).status).toBe(405);
    const history = await httpGet(`/api/history?name=x&token=${token}`, `127.0.0.1:${port}`);
    expect(history.status).toBe(200);
    expect((JSON.parse(history.body) as Array<{ event: string }>).map((h) => h.event)).toEqual(expect.arrayContaining(["SPAWN", "STARTED", "STOPPED"]));
    expect((await httpGet(`/api/history?name=..%2Fetc&token=${token}`, `127.0.0.1:${port}`)).status).toBe(400);
  });

  it("a second viz on the same port fails at once with a clear error (exit 1)", async () => {
    const result = await ws.run(["viz", "--port", String(port), "--no-open", "--json"]);
    expect(result.code).toBe(1);
    const error = (JSON.parse(result.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("PORT_IN_USE");
    expect(error.message).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use: choose another with --port`));
  });

  it("stops on SIGTERM (exit 0)", async () => {
    viz!.kill("SIGTERM");
    const exit = await waitFor(() => vizExit, "troupe viz to exit", 15_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
