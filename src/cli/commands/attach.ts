import { createConnection } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { LineDecoder, PROTOCOL_VERSION as PTY_PROTOCOL, chunkText, parseFrame, type ClientFrame, type HelloFrame } from "../../actors/pty-host/protocol.js";
import { withDaemon, workspace } from "../../client/discovery.js";
import type { AttachInfo } from "../../daemon/protocol.js";
import { TroupeError, isTroupeError } from "../../shared/errors.js";
import { workspaceLayout } from "../../shared/layout.js";
import { checkName, parse, str } from "../args.js";
import { DetachFilter, resolveDetachKeys, type DetachKeys } from "../detach-keys.js";

export const usage = `Usage: troupe attach <name> [--detach-keys <keys>] [--read-only]

Connects this terminal to the builder's terminal: its recent output is
replayed, then what you type goes to the agent and its output comes back.
Press the detach keys (Ctrl-] unless set) to detach: the agent keeps running.
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
function helloFrame(_mode: AttachMode): HelloFrame {
  return { type: "hello", protocol: PTY_PROTOCOL, client: "troupe-attach" };
}

function attach(info: AttachInfo, mode: AttachMode): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    const stdout = process.stdout;
    const socket = createConnection(info.socket);
    const lines = new LineDecoder(64 * 1024 * 1024);
    const input = new StringDecoder("utf8");
    let attached = false;
    let finished = false;
    let exitNote: string | null = null;
    const send = (frame: ClientFrame) => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(frame)}\n`);
    };
    const resize = () => {
      // A viewer's window must not resize the agent's terminal for the one who types.
      if (mode.readOnly) return;
      if (stdout.isTTY && stdout.columns && stdout.rows) send({ type: "resize", cols: stdout.columns, rows: stdout.rows });
    };
    const detachKeys = new DetachFilter(mode.detachKeys, {
      forward: (bytes) => {
        if (mode.readOnly) return;
        const text = input.write(bytes);
        if (text) for (const data of chunkText(text)) send({ type: "input", data });
      },
      detach: () => finish(0, `[detached from ${info.name}: it keeps running; \`troupe attach ${info.name}\` to come back]`),
    });
    const finish = (code: number, message: string | null, error?: Error) => {
      if (finished) return;
      finished = true;
      detachKeys.dispose();
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.off("data", onInput);
      stdin.off("end", onEnd);
      stdin.pause();
      process.off("SIGWINCH", resize);
      socket.destroy();
      if (message) process.stderr.write(`${attached ? "\r\n" : ""}${message}\n`);
      if (error) reject(error);
      else resolve(code);
    };
    const onInput = (chunk: Buffer) => detachKeys.push(chunk);
    const onEnd = () => {
      detachKeys.end();
      finish(0, `[input ended: detached from ${info.name}, which keeps running]`);
    };
    socket.on("connect", () => send(helloFrame(mode)));
    socket.on("data", (chunk: Buffer) => {
      let frames: string[];
      try {
        frames = lines.push(chunk);
      } catch (error) {
        return finish(1, null, new TroupeError("HOST_UNREACHABLE", `the pty host of ${info.name} sent a bad frame: ${(error as Error).message}`));
      }
      for (const line of frames) {
        const frame = parseFrame(line);
        if (!frame) continue;
        switch (frame.type) {
          case "identity": {
            if (attached) break;
            attached = true;
            const notes = [`pid ${String(frame.pid)}`, ...(frame.pty === false ? ["no pty: pipes"] : []), ...(mode.readOnly ? ["read-only"] : [])];
            process.stderr.write(`[attached to ${info.name} (${notes.join(", ")}). Detach with ${mode.detachKeys.label}]\r\n`);
            if (stdin.isTTY) stdin.setRawMode(true);
            stdin.on("data", onInput);
            stdin.on("end", onEnd);
            stdin.resume();
            process.on("SIGWINCH", resize);
            resize();
            break;
          }
          case "scrollback":
          case "output":
            if (typeof frame.data === "string") stdout.write(frame.data);
            break;
          case "exit":
            exitNote = frame.signal ? `signal ${String(frame.signal)}` : `code ${String(frame.code)}`;
            finish(0, `[${info.name}'s agent exited (${exitNote})]`);
            break;
          case "reply":
            if (frame.ok === false) {
              const error = frame.error as { code?: string; message?: string } | undefined;
              finish(1, null, TroupeError.fromJSON({ code: error?.code ?? "HOST_UNREACHABLE", message: `pty host of ${info.name}: ${error?.message ?? "request refused"}` }));
            }
            break;
          default:
            break;
        }
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      finish(1, null, new TroupeError("HOST_UNREACHABLE", `cannot reach the terminal of ${info.name} at ${info.socket}: ${error.message}`, { name: info.name, socket: info.socket }));
    });
    socket.on("close", () => finish(attached ? 0 : 1, attached ? `[the terminal of ${info.name} closed]` : null, attached ? undefined : new TroupeError("HOST_UNREACHABLE", `the pty host of ${info.name} closed the connection`)));
  });
}
