/**
 * A real full-screen terminal for tests (DESIGN §13): one tmux server per
 * session, on a private socket in its own temporary directory (never the
 * user's server), running one command in a pane of a given size.
 *
 * Besides the screen (`capture`), a test can read the bytes the command wrote
 * to its terminal (`written`): tmux pipes the pane's output to a file from
 * before the command starts (`pipe-pane -O`; the command waits on a tmux
 * channel until the pipe is open), so the escape sequences a client writes on
 * attach and detach can be checked byte for byte.
 *
 * The command runs as a child of the pane's shell, which writes its exit
 * status to a file: tmux 3.3a now and then leaves an exited pane process
 * unreaped (a zombie it never marks dead), so `pane_dead` alone would hang a
 * test on a command that did exit.
 *
 * `close()` kills only that server, ends what is left of the pane's terminal
 * session, and removes the directory.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TmuxStartOptions {
  /** Pane size (default 100×30). */
  cols?: number;
  rows?: number;
  cwd?: string;
  /** The environment of the command (default: this process's); TMUX variables are dropped. */
  env?: NodeJS.ProcessEnv;
}

export interface TmuxWaitOptions {
  /** Default 20 s: a loaded 2-core machine is slow, and a passing test never waits that long. */
  timeoutMs?: number;
  /** For the error message. */
  what?: string;
}

export interface CaptureOptions {
  /** Keep colours and attributes as escape sequences (`capture-pane -e`). */
  escapes?: boolean;
}

const START_CHANNEL = "troupe-test-start";
const POLL_MS = 40;

let tmuxPath: string | null | undefined;

/** The tmux binary, or null when the machine has none. */
export function findTmux(): string | null {
  if (tmuxPath === undefined) {
    try {
      tmuxPath = execFileSync("sh", ["-c", "command -v tmux"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || null;
    } catch {
      tmuxPath = null;
    }
  }
  return tmuxPath;
}

/** Throws, saying what to install, when tmux is missing (as the browser test does for Chromium). */
export function requireTmux(): string {
  const path = findTmux();
  if (!path) throw new Error("tmux is missing: the terminal tests drive real terminals through it; install Debian's tmux (sh scripts/ensure-test-tools.sh, which npm test runs first)");
  return path;
}


/** One word for `sh -c`. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export class TmuxSession {
  /** The session's own temporary directory (socket, config, the written-bytes file). */
  readonly dir: string;
  readonly socket: string;
  /** Where tmux appends every byte the command writes to its terminal. */
  readonly writtenFile: string;
  private readonly statusFile: string;
  /** The pane's shell: the leader of the terminal session the command runs in. */
  panePid = 0;
  private closed = false;

  private constructor(
    private readonly tmux: string,
    dir: string,
  ) {
    this.dir = dir;
    this.socket = join(dir, "sock");
    this.writtenFile = join(dir, "written.bin");
    this.statusFile = join(dir, "status");
  }

  /** Starts a tmux server on a private socket running `argv` (no shell: each word is quoted) in a pane of the given size. */
  static async start(argv: string[], options: TmuxStartOptions = {}): Promise<TmuxSession> {
    const tmux = requireTmux();
    const session = new TmuxSession(tmux, mkdtempSync(join(tmpdir(), "troupe-tmux-")));
    try {
      await session.launch(argv, options);
      return session;
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  private async launch(argv: string[], options: TmuxStartOptions): Promise<void> {
    const config = join(this.dir, "tmux.conf");
    writeFileSync(
      config,
      [
        "set -g status off", // the pane is the whole window
        "set -g remain-on-exit on", // the exit status stays readable
        "set -s escape-time 0",
        "set -g history-limit 10000",
        "set -g default-shell /bin/sh",
        "",
      ].join("\n"),
    );
    writeFileSync(this.writtenFile, "");
    const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
    delete env.TMUX;
    delete env.TMUX_PANE;
    // The command waits until the pipe to writtenFile is open: not one byte it writes is missed.
    const status = shellQuote(this.statusFile);
    const command = `${shellQuote(this.tmux)} -S ${shellQuote(this.socket)} wait-for ${START_CHANNEL} || exit 125; ${argv.map(shellQuote).join(" ")}; echo $? > ${status}.new && mv ${status}.new ${status}`;
    await this.run(["-f", config, "new-session", "-d", "-s", "main", "-x", String(options.cols ?? 100), "-y", String(options.rows ?? 30), ...(options.cwd ? ["-c", options.cwd] : []), command], env);
    await this.run(["pipe-pane", "-O", "-t", "main", `cat >> ${shellQuote(this.writtenFile)}`]);
    this.panePid = Number((await this.run(["display-message", "-p", "-t", "main", "#{pane_pid}"])).trim());
    // tmux remembers a signal nobody waits for yet, so the order with the pane's wait does not matter.
    await this.run(["wait-for", "-S", START_CHANNEL]);
  }

  /** Runs a tmux command against this server; resolves to its stdout. */
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.tmux, ["-S", this.socket, ...args], { env: env ?? withoutTmux(process.env), encoding: "utf8", timeout: 15_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`tmux ${args.join(" ")}: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      });
    });
  }

  /** Types `text` literally (no key names). */
  async sendText(text: string): Promise<void> {
    await this.run(["send-keys", "-t", "main", "-l", "--", text]);
  }

  /** Presses keys by tmux's names: `Enter`, `Escape`, `C-a`, `Up`, or plain words. */
  async sendKeys(...keys: string[]): Promise<void> {
    await this.run(["send-keys", "-t", "main", "--", ...keys]);
  }

  /** Writes exactly these bytes to the pane's terminal, as one write (`send-keys -H`). */
  async sendBytes(bytes: Buffer | number[]): Promise<void> {
    const hex = [...Buffer.from(bytes)].map((byte) => byte.toString(16).padStart(2, "0"));
    await this.run(["send-keys", "-t", "main", "-H", ...hex]);
  }

  /** The visible pane, one line per row (trailing blanks trimmed by tmux). */
  async capture(options: CaptureOptions = {}): Promise<string> {
    return this.run(["capture-pane", "-p", "-t", "main", ...(options.escapes ? ["-e"] : [])]);
  }

  /** Polls the screen until it matches; resolves to that screen. */
  async waitFor(match: RegExp | ((screen: string) => boolean), options: TmuxWaitOptions & CaptureOptions = {}): Promise<string> {
    const test = typeof match === "function" ? match : (screen: string) => match.test(screen);
    let screen = "";
    await poll(async () => test((screen = await this.capture(options))), options, () => `the screen to show ${options.what ?? String(match)}; it shows:\n${screen}`);
    return screen;
  }

  /** Every byte the command has written to its terminal so far. */
  written(): Buffer {
    return existsSync(this.writtenFile) ? readFileSync(this.writtenFile) : Buffer.alloc(0);
  }

  /** Polls the written bytes (as UTF-8 text) until they match; tmux's pipe may lag the screen a little. */
  async waitForWritten(match: RegExp | ((written: string) => boolean), options: TmuxWaitOptions = {}): Promise<string> {
    const test = typeof match === "function" ? match : (text: string) => match.test(text);
    let text = "";
    await poll(() => test((text = this.written().toString("utf8"))), options, () => `the command to write ${options.what ?? String(match)}; it wrote ${JSON.stringify(text.slice(-2000))}`);
    return text;
  }

  /** The command's exit status once it has ended (a signal counts as 128 + its number), else null. */
  async exitStatus(): Promise<number | null> {
    // tmux first: a pane seen dead has written its status file, if it could, before it died.
    const [dead, status, signal] = (await this.run(["display-message", "-p", "-t", "main", "#{pane_dead} #{pane_dead_status} #{pane_dead_signal}"])).trim().split(" ");
    if (existsSync(this.statusFile)) return Number(readFileSync(this.statusFile, "utf8").trim());
    if (dead !== "1") return null;
    // The shell was killed before it could write the status.
    if (status) return Number(status);
    return signal ? 128 + Number(signal) : null;
  }

  async waitForExit(options: TmuxWaitOptions = {}): Promise<number> {
    let status: number | null = null;
    let screen = "";
    await poll(async () => (status = await this.exitStatus()) !== null || ((screen = await this.capture()), false), options, () => `${options.what ?? "the command"} to exit; the screen shows:\n${screen}`);
    return status!;
  }

  /** Resizes the pane (its window: there is one pane). */
  async resize(cols: number, rows: number): Promise<void> {
    await this.run(["resize-window", "-t", "main", "-x", String(cols), "-y", String(rows)]);
  }

  /**
   * The live processes of the pane's terminal session (the shell, the command,
   * whatever it started there; not a daemon it started, which leaves the
   * session). Zombies do not count: they are dead, only not yet reaped by init.
   */
  sessionPids(): number[] {
    if (this.panePid <= 0) return [];
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      } catch {
        continue; // gone meanwhile
      }
      // after "(comm)": state, ppid, pgrp, session
      const [state, , , session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(session) === this.panePid && state !== "Z" && state !== "X") pids.push(Number(entry));
    }
    return pids;
  }

  /** Kills this server only (by its socket), what is left of the pane's session, and the directory. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (existsSync(this.socket)) await this.run(["kill-server"]).catch(() => undefined);
    // The closing terminal's SIGHUP ends an ordinary command; what ignores it is killed by its pid.
    const deadline = Date.now() + 5_000;
    while (this.sessionPids().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    for (const pid of this.sessionPids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function withoutTmux(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy.TMUX;
  delete copy.TMUX_PANE;
  return copy;
}

async function poll(check: () => boolean | Promise<boolean>, options: TmuxWaitOptions, describe: () => string): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
