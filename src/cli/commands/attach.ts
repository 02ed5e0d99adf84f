import { createConnection } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { LineDecoder, PROTOCOL_VERSION as PTY_PROTOCOL, chunkText, parseFrame, type ClientFrame, type ClientInfo, type HelloFrame } from "../../actors/pty-host/protocol.js";
import { withDaemon, workspace } from "../../client/discovery.js";
import type { AttachInfo } from "../../daemon/protocol.js";
import { TroupeError, isTroupeError } from "../../shared/errors.js";
import { workspaceLayout } from "../../shared/layout.js";
import { checkName, parse, str } from "../args.js";
import { CLOSE_SCREEN, FALLBACK_RESTORE, OPEN_SCREEN, blankOutside, othersNote, screenForTerminal, type Size } from "../attach-screen.js";
import { HostRequests } from "../host-requests.js";
import { DetachFilter, resolveDetachKeys, type DetachKeys } from "../detach-keys.js";

/** Signals that end attach like a detach: the agent keeps running and the terminal is given back. */
const LEAVE_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGHUP", "SIGINT"];

export const usage = `Usage: troupe attach <name> [--detach-keys <keys>] [--read-only]

Connects this terminal to the builder's terminal: the agent's screen is
shown as it is now, then what you type goes to the agent and its output
comes back. Press the detach keys (Ctrl-] unless set) to detach: the agent
keeps running, and your terminal is given back as it was (your screen, and
every mode the agent had turned on, such as mouse reporting, turned off).
Press their last key twice to send the keys themselves to the agent (Ctrl-]
Ctrl-] sends one Ctrl-], for vim's tag jump).

Options:
  --detach-keys <keys>  the detach sequence, as Docker writes it: comma-separated
                        ctrl-<a-z>, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_
                        or single characters, e.g. ctrl-p,ctrl-q (default: ctrl-],
                        or "attach": {"detachKeys": "..."} in .troupe/config.json)
  --read-only           watch only: nothing you type reaches the agent and this
                        window's size is never sent (the detach keys still work)
  -h, --help`;

/** What this client is allowed to do, decided once from the command line. */
interface AttachMode {
  detachKeys: DetachKeys;
  readOnly: boolean;
}

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { "detach-keys": { type: "string" }, "read-only": { type: "boolean" } }, usage, { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  // Settled before the daemon is asked anything: a bad sequence is a usage error, not a half-made attach.
  const mode: AttachMode = { detachKeys: resolveDetachKeys(str(args.values["detach-keys"]), configFile()), readOnly: args.values["read-only"] === true };
  const info = await withDaemon((client) => client.call("attach.info", { name }));
  return attach(info, mode);
}

/** The workspace's config file, or null outside a repository (an agent reaching its daemon through TROUPE_SOCKET). */
function configFile(): string | null {
  try {
    return workspaceLayout(workspace().root).configFile;
  } catch (error) {
    if (isTroupeError(error, "NOT_A_GIT_REPO")) return null;
    throw error;
  }
}

/** The hello frame: the one place that tells the pty host what kind of client this is. */
function helloFrame(mode: AttachMode, window: Size | null): HelloFrame {
  return {
    type: "hello",
    protocol: PTY_PROTOCOL,
    client: "troupe-attach",
    // The screen, not the byte ring: a ring cut mid-sequence is not what the agent drew.
    screen: true,
    // In the hello, so the pty is resized before the screen is serialized. A viewer's window
    // must not resize the agent's terminal for the one who types.
    ...(window && !mode.readOnly ? { cols: window.cols, rows: window.rows } : {}),
    ...(mode.readOnly ? { readOnly: true } : {}),
  };
}

/** This terminal's size, or null when stdout is not a terminal. */
function windowSize(): Size | null {
  const stdout = process.stdout;
  return stdout.isTTY && stdout.columns && stdout.rows ? { cols: stdout.columns, rows: stdout.rows } : null;
}

/** How long detach waits for the host's restore before it falls back to turning every mode off. */
const RESTORE_TIMEOUT_MS = 3_000;

function attach(info: AttachInfo, mode: AttachMode): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    const stdout = process.stdout;
    // Only a terminal gets its screen saved and cleared: a pipe gets the agent's bytes as they are.
    const ownScreen = stdout.isTTY === true;
    const socket = createConnection(info.socket);
    const lines = new LineDecoder(64 * 1024 * 1024);
    const input = new StringDecoder("utf8");
    const requests = new HostRequests((frame) => send(frame));
    let identity: Record<string, unknown> | null = null;
    let clients: { you: number; cols: number; rows: number; clients: ClientInfo[] } | null = null;
    let snapshot: { data: string; alternate: boolean } | null = null;
    let attached = false;
    /** Whether anything from the agent reached this terminal: only then is there a mode to undo. */
    let drew = false;
    let leaving = false;
    let finished = false;
    const send = (frame: ClientFrame) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(frame)}\n`);
    };
    const write = (data: string) => {
      if (data) stdout.write(data);
    };
    const resize = () => {
      const window = windowSize();
      if (!mode.readOnly && window) send({ type: "resize", ...window });
      // A viewer is told of no size change (it sent none): its own window may now show stale rows.
      else if (clients) blankStale(clients);
    };
    /** Blanks what lies outside a pty smaller than this window (see blankOutside). */
    const blankStale = (pty: Size) => {
      const window = windowSize();
      if (!ownScreen || !window || (pty.cols >= window.cols && pty.rows >= window.rows)) return;
      requests.request({ type: "screen" }, RESTORE_TIMEOUT_MS).then(
        (reply) => {
          const cursor = (reply.screen as { cursor?: { x: number; y: number } } | undefined)?.cursor;
          if (!leaving && !finished && cursor) write(blankOutside(pty, window, cursor));
        },
        () => undefined, // the connection is going: finish() gives the terminal back
      );
    };
    const detachKeys = new DetachFilter(mode.detachKeys, {
      forward: (bytes) => {
        if (mode.readOnly || leaving) return;
        const text = input.write(bytes);
        if (text) for (const data of chunkText(text)) send({ type: "input", data });
      },
      detach: () => void leave(`[detached from ${info.name}: it keeps running; \`troupe attach ${info.name}\` to come back]`),
    });
    /** Detach: the host says what undoes the agent's modes in this terminal; output keeps coming until it does. */
    const leave = async (message: string) => {
      if (leaving || finished) return;
      leaving = true;
      stopInput();
      let restore: string | null = null;
      if (drew) {
        try {
          const reply = await requests.request({ type: "restore" }, RESTORE_TIMEOUT_MS);
          restore = typeof reply.restore === "string" ? reply.restore : null;
        } catch {
          // No answer (the host went, or is stuck): finish() falls back to turning every mode off.
        }
      }
      finish(0, message, restore);
    };
    const stopInput = () => {
      detachKeys.dispose();
      stdin.off("data", onInput);
      stdin.off("end", onEnd);
    };
    /**
     * Where every way out ends: the restore (null: the host never said, so every
     * mode off) and the user's own screen back before raw mode is left, then the message.
     */
    const finish = (code: number, message: string | null, restore: string | null, error?: Error) => {
      if (finished) return;
      finished = true;
      stopInput();
      requests.closeAll();
      if (drew) write(restore ?? FALLBACK_RESTORE);
      if (ownScreen && attached) write(CLOSE_SCREEN);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      process.off("SIGWINCH", resize);
      for (const signal of LEAVE_SIGNALS) process.off(signal, onSignal);
      socket.destroy();
      // Back on the user's screen the cursor starts a fresh line (after the banner): no newline needed.
      if (message) process.stderr.write(`${attached && !ownScreen ? "\r\n" : ""}${message}\n`);
      if (error) reject(error);
      else resolve(code);
    };
    const onInput = (chunk: Buffer) => detachKeys.push(chunk);
    // Ended from outside (kill, a closing terminal): leave as a detach does, so the terminal gets its modes back.
    const onSignal = (signal: NodeJS.Signals) => void leave(`[${signal}: detached from ${info.name}, which keeps running]`);
    const onEnd = () => {
      detachKeys.end();
      void leave(`[input ended: detached from ${info.name}, which keeps running]`);
    };
    /** The handshake is over (its scrollback frame): say what this is, then show the agent's screen. */
    const begin = (scrollback: string) => {
      attached = true;
      const window = windowSize();
      const notes = [`pid ${String(identity!.pid)}`, ...(identity!.pty === false ? ["no pty: pipes"] : []), ...(mode.readOnly ? ["read-only"] : [])];
      const others = clients ? othersNote(clients.you, clients.clients, clients, window) : "";
      process.stderr.write(`[attached to ${info.name} (${notes.join(", ")}). Detach with ${mode.detachKeys.label}${others ? `. ${others}` : ""}]\r\n`);
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.on("data", onInput);
      stdin.on("end", onEnd);
      stdin.resume();
      process.on("SIGWINCH", resize);
      for (const signal of LEAVE_SIGNALS) process.on(signal, onSignal);
      if (ownScreen) write(OPEN_SCREEN);
      // A host that predates the screen sends the byte ring instead.
      const data = snapshot ? screenForTerminal(snapshot.data, snapshot.alternate) : scrollback;
      if (data) {
        drew = true;
        write(data);
      }
      if (clients) blankStale(clients);
    };
    socket.on("connect", () => send(helloFrame(mode, windowSize())));
    socket.on("data", (chunk: Buffer) => {
      let frames: string[];
      try {
        frames = lines.push(chunk);
      } catch (error) {
        return finish(1, null, null, new TroupeError("HOST_UNREACHABLE", `the pty host of ${info.name} sent a bad frame: ${(error as Error).message}; attach again`));
      }
      for (const line of frames) {
        if (finished) return;
        const frame = parseFrame(line);
        if (!frame) continue;
        switch (frame.type) {
          case "identity":
            identity ??= frame;
            break;
          case "clients": {
            const before = clients;
            clients = { you: frame.you as number, cols: frame.cols as number, rows: frame.rows as number, clients: Array.isArray(frame.clients) ? (frame.clients as ClientInfo[]) : [] };
            if (attached && !leaving && (!before || before.cols !== clients.cols || before.rows !== clients.rows)) blankStale(clients);
            break;
          }
          case "screen":
            if (typeof frame.data === "string") snapshot = { data: frame.data, alternate: frame.alternate === true };
            break;
          case "scrollback":
            if (!attached && identity) begin(typeof frame.data === "string" ? frame.data : "");
            break;
          case "output":
            if (attached && typeof frame.data === "string" && frame.data) {
              drew = true;
              write(frame.data);
            }
            break;
          case "exit": {
            const note = frame.signal ? `signal ${String(frame.signal)}` : `code ${String(frame.code)}`;
            finish(0, `[${info.name}'s agent exited (${note})]`, typeof frame.restore === "string" ? frame.restore : null);
            break;
          }
          case "reply":
            if (requests.settle(frame)) break;
            if (frame.ok === false) {
              const error = frame.error as { code?: string; message?: string } | undefined;
              finish(1, null, null, TroupeError.fromJSON({ code: error?.code ?? "HOST_UNREACHABLE", message: `pty host of ${info.name}: ${error?.message ?? "request refused"}` }));
            }
            break;
          default:
            break;
        }
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      finish(1, null, null, new TroupeError("HOST_UNREACHABLE", `cannot reach the terminal of ${info.name} at ${info.socket}: ${error.message}`, { name: info.name, socket: info.socket }));
    });
    socket.on("close", () =>
      finish(attached ? 0 : 1, attached ? `[the terminal of ${info.name} closed]` : null, null, attached ? undefined : new TroupeError("HOST_UNREACHABLE", `the pty host of ${info.name} closed the connection; see \`troupe status ${info.name}\``)),
    );
  });
}
