/**
 * pty host figures with the screen emulator (DESIGN §12, issue 11), each
 * beside a baseline measured in the same run:
 *
 * - pty host RSS, one idle builder on a PTY (budget ≤ 56 MB), beside a bare
 *   idle Node process; the RSS after the burst below is printed too;
 * - agent output through host + emulator + transcripts + one client, a 100 MB
 *   burst (budget ≥ 0.5× raw), beside the same agent on a raw node-pty read
 *   in this process;
 * - attach to a full screen (connect → screen received, budget ≤ 50 ms):
 *   120×40 of coloured text with 1000 lines of scrollback.
 *
 *   npm run bench -- pty-host      (TROUPE_BENCH_BURST_MB to change the burst)
 */
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { connectPtyHost, launchPtyHost, type PtyHostClient, type PtyHostSpec } from "../src/actors/index.js";
import { isProcessAlive, signalProcessTree } from "../src/shared/proc.js";
import { makeBenchRepo, median, memoryOf, quantile, type Memory } from "./common.js";

const BURST_MB = Number(process.env.TROUPE_BENCH_BURST_MB ?? 100);
const ATTACHES = 30;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/** Waits for one byte on stdin, then writes BURST_MB of coloured lines as fast as the pty takes them. */
const BURST_AGENT = `
const line = "\\x1b[32mhello\\x1b[0m world lorem ipsum dolor sit amet consectetur " + "x".repeat(40) + "\\r\\n";
const chunk = Buffer.from(line.repeat(Math.ceil(65536 / line.length)));
const total = ${BURST_MB} * 1e6;
process.stdin.setRawMode?.(true);
process.stdin.once("data", () => {
  let n = 0;
  const go = () => { while (n < total) { n += chunk.length; if (!process.stdout.write(chunk)) return process.stdout.once("drain", go); } process.exit(0); };
  go();
});`;

/** Fills 1040 rows of 120 columns with coloured text, then idles. */
const FULL_SCREEN_AGENT = `
let out = "";
for (let i = 0; i < 1040; i++) out += "\\x1b[3" + (i % 8) + "m" + ("row " + i + " ").padEnd(120, "abcdefgh").slice(0, 120) + "\\x1b[0m" + (i < 1039 ? "\\r\\n" : "");
process.stdout.write(out + "\\nFILLED");
setInterval(() => {}, 1e9);`;


const settle = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function bareNodeMemory(): Promise<Memory> {
  const child = spawn(process.execPath, ["-e", "process.stdout.write('up\\n'); setInterval(() => {}, 1e9)"], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    await new Promise<void>((ready) => child.stdout!.once("data", () => ready()));
    await settle(500);
    return memoryOf(child.pid!);
  } finally {
    child.kill("SIGKILL");
  }
}

function specIn(dir: string, id: string, cmd: string[]): PtyHostSpec {
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("TROUPE_")) env[key] = value;
  return {
    builderId: id,
    name: id,
    cmd,
    cwd: work,
    env: { ...env, TERM: "xterm-256color" },
    pty: "on",
    socketPath: join(dir, "run", `${id}.sock`),
    transcriptPath: join(dir, "logs", id, `${id}.log`),
    exitStatusPath: join(dir, "run", `${id}.exit.json`),
    logPath: join(dir, "logs", id, "pty-host.log"),
    cols: 120,
    rows: 40,
  };
}

/** Seconds from the go byte to the host's exit frame: every byte parsed, written and sent to the client. */
async function burstThroughHost(dir: string): Promise<{ seconds: number; hostPid: number }> {
  const started = await launchPtyHost(specIn(dir, "burst", [process.execPath, "-e", BURST_AGENT]));
  const client = await connectPtyHost(started.socketPath);
  try {
    let bytes = 0;
    client.on("output", (data) => (bytes += data.length));
    const exited = new Promise<void>((resolve) => client.once("exit", () => resolve()));
    await settle(300); // the agent's node start-up, outside the measure
    const t0 = performance.now();
    client.write("g");
    await exited;
    const seconds = (performance.now() - t0) / 1000;
    if (bytes < BURST_MB * 1e6) throw new Error(`the client saw ${bytes} bytes of ${BURST_MB * 1e6}`);
    return { seconds, hostPid: started.hostPid };
  } finally {
    client.close();
  }
}

async function burstRaw(): Promise<number> {
  const pty = createRequire(import.meta.url)("@lydell/node-pty") as typeof import("@lydell/node-pty");
  const term = pty.spawn(process.execPath, ["-e", BURST_AGENT], { cols: 120, rows: 40, cwd: process.cwd(), env: process.env as Record<string, string> });
  let bytes = 0;
  term.onData((data) => (bytes += data.length));
  const exited = new Promise<void>((resolve) => term.onExit(() => resolve()));
  await settle(300);
  const t0 = performance.now();
  term.write("g");
  await exited;
  const seconds = (performance.now() - t0) / 1000;
  if (bytes < BURST_MB * 1e6) throw new Error(`raw node-pty saw ${bytes} bytes of ${BURST_MB * 1e6}`);
  return seconds;
}

async function attachTimes(dir: string): Promise<{ times: number[]; bytes: number }> {
  const started = await launchPtyHost(specIn(dir, "full", [process.execPath, "-e", FULL_SCREEN_AGENT]));
  const watcher = await connectPtyHost(started.socketPath, { screen: true });
  try {
    for (const deadline = Date.now() + 10_000; ; ) {
      if ((await watcher.screenText()).lines.some((line) => line.includes("FILLED"))) break;
      if (Date.now() > deadline) throw new Error("the full-screen agent did not finish drawing");
      await settle(20);
    }
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < ATTACHES; i++) {
      const t0 = performance.now();
      const client: PtyHostClient = await connectPtyHost(started.socketPath, { screen: true, size: { cols: 120, rows: 40 } });
      times.push(performance.now() - t0);
      bytes = client.screen!.data.length;
      client.close();
    }
    return { times, bytes };
  } finally {
    await watcher.stop({ killTimeoutMs: 1_000 }).catch(() => undefined);
    await watcher.collect().catch(() => undefined);
    watcher.close();
  }
}

export async function run(): Promise<void> {
  console.log("\n## pty host with the screen emulator (issue 11)");
  const dir = makeBenchRepo("troupe-bench-pty-");
  const hosts: number[] = [];
  try {
    const bare = await bareNodeMemory();
    const idle = await launchPtyHost(specIn(dir, "idle", ["sleep", "100000"]));
    hosts.push(idle.hostPid, idle.pid);
    await settle(1000);
    const host = memoryOf(idle.hostPid);

    const raw = await burstRaw();
    const burst = await burstThroughHost(dir);
    hosts.push(burst.hostPid);
    const afterBurst = memoryOf(burst.hostPid);
    const attach = await attachTimes(dir);

    console.log(`| figure | value | baseline (same run) | ratio | budget |`);
    console.log(`| --- | --- | --- | --- | --- |`);
    console.log(`| pty host RSS, one idle builder on a PTY, emulator loaded | ${mb(host.rss)} (own ${mb(host.anon)}) | bare idle \`node\` ${mb(bare.rss)} (own ${mb(bare.anon)}) | ${(host.rss / bare.rss).toFixed(2)}× | ≤ 56 MB ${host.rss <= 56 * 2 ** 20 ? "✓" : "✗"} |`);
    console.log(`| pty host RSS right after the ${BURST_MB} MB burst (not budgeted) | ${mb(afterBurst.rss)} (own ${mb(afterBurst.anon)}) | — | — | — |`);
    const rate = BURST_MB / burst.seconds;
    const rawRate = BURST_MB / raw;
    console.log(`| ${BURST_MB} MB burst through host + emulator + transcripts + 1 client | ${rate.toFixed(1)} MB/s (${burst.seconds.toFixed(2)} s) | raw node-pty read in-process ${rawRate.toFixed(1)} MB/s (${raw.toFixed(2)} s) | ${(rate / rawRate).toFixed(2)}× | ≥ 0.5× ${rate / rawRate >= 0.5 ? "✓" : "✗"} |`);
    const p50 = median(attach.times);
    const p90 = quantile(attach.times, 0.9);
    console.log(`| attach to a full 120×40 screen + 1000 lines of scrollback (connect → screen received), median / p90 of ${ATTACHES} | ${p50.toFixed(1)} / ${p90.toFixed(1)} ms (${mb(attach.bytes)} of screen) | — | — | ≤ 50 ms ${p90 <= 50 ? "✓" : "✗"} |`);
  } finally {
    for (const pid of hosts) if (isProcessAlive(pid)) signalProcessTree(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
