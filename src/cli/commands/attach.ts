import { createConnection } from "node:net";
import { StringDecoder } from "node:string_decoder";
import { LineDecoder, PROTOCOL_VERSION as PTY_PROTOCOL, parseFrame, type ClientFrame } from "../../actors/pty-host/protocol.js";
import { withDaemon } from "../../client/discovery.js";
import type { AttachInfo } from "../../daemon/protocol.js";
import { TroupeError } from "../../shared/errors.js";
import { checkName, parse } from "../args.js";

export const usage = `Usage: troupe attach <name>

Connects this terminal to the builder's terminal: its recent output is
replayed, then what you type goes to the agent and its output comes back.
Press Ctrl-] to detach: the agent keeps running.

Options:
  -h, --help`;

/** Ctrl-] (GS), as telnet does it. */
const DETACH_BYTE = 0x1d;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, {}, usage, { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  const info = await withDaemon((client) => client.call("attach.info", { name }));
  return attach(info);
}

function attach(info: AttachInfo): Promise<number> {
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
      if (stdout.isTTY && stdout.columns && stdout.rows) send({ type: "resize", cols: stdout.columns, rows: stdout.rows });
    };
    const finish = (code: number, message: string | null, error?: Error) => {
      if (finished) return;
      finished = true;
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
    const onInput = (chunk: Buffer) => {
      const at = chunk.indexOf(DETACH_BYTE);
      const before = at === -1 ? chunk : chunk.subarray(0, at);
      const text = input.write(before);
      if (text) send({ type: "input", data: text });
      if (at !== -1) finish(0, `[detached from ${info.name}: it keeps running; \`troupe attach ${info.name}\` to come back]`);
    };
    const onEnd = () => finish(0, `[input ended: detached from ${info.name}, which keeps running]`);
    socket.on("connect", () => send({ type: "hello", protocol: PTY_PROTOCOL, client: "troupe-attach" }));
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
            process.stderr.write(`[attached to ${info.name} (pid ${String(frame.pid)}${frame.pty === false ? ", no pty: pipes" : ""}). Detach with Ctrl-]]\r\n`);
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
