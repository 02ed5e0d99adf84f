import { closeSync, openSync, readSync, statSync, watch, type FSWatcher } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { connectDaemon } from "../../client/discovery.js";
import type { DaemonClient } from "../../client/rpc.js";
import type { LogsInfo } from "../../daemon/protocol.js";
import { QueryFilter } from "../../term/queries.js";
import { screenText } from "../../term/screen.js";
import { checkName, parse } from "../args.js";
import { note, printJson } from "../output.js";

export const usage = `Usage: troupe logs <name> [--raw] [--follow]

Prints what the builder's terminal showed, as text: the lines that scrolled
off its screen, then the screen as it is now (or as it was when the agent
exited), as \`grep\` would want it. Nothing is written that would make your
terminal answer (terminal queries are never replayed).

With --raw, prints the byte transcript instead (.troupe/logs/<name>/<id>.log):
exactly what the agent wrote, escape sequences included. With --follow, keeps
printing what the agent writes next (its bytes, less any terminal query; with
--raw, every byte) until the builder is destroyed or you press Ctrl-C.

Options:
  --raw          the byte transcript, escape sequences and all
  -f, --follow   keep printing new output
  --json         print { name, id, state, path, exists, textPath, textExists, content }
                 (with --follow: one JSON line per chunk)
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { follow: { type: "boolean", short: "f" }, raw: { type: "boolean" } }, usage, { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  const raw = args.values.raw === true;
  const client = await connectDaemon();
  let info: LogsInfo;
  try {
    info = await client.call("logs.path", { name });
    if (args.values.follow === true) await client.call("subscribe", { names: [name] });
  } catch (error) {
    client.close();
    throw error;
  }
  if (args.values.follow === true) return follow(info, { json: args.json, raw }, client);
  try {
    const content = raw ? (info.exists ? readAll(info.path) : "") : await textOf(info, client);
    if (args.json) {
      printJson({ ...info, content });
      return 0;
    }
    if (content === "") {
      note(`troupe: nothing shown yet by ${name} (${raw ? info.path : info.textPath})`);
      return 0;
    }
    process.stdout.write(content.endsWith("\n") ? content : `${content}\n`);
    return 0;
  } finally {
    client.close();
  }
}

/**
 * The text transcript, then the screen as it is now while the agent runs
 * (the host appends the final screen itself when the agent exits).
 */
async function textOf(info: LogsInfo, client: DaemonClient): Promise<string> {
  const scrolled = info.textExists ? readAll(info.textPath) : "";
  if (info.state !== "working") return scrolled;
  let screen: string[] = [];
  try {
    screen = (await client.call("screen", { name: info.name })).lines;
  } catch {
    // no terminal to read (pipes, or it just stopped): the transcript is all there is
  }
  const now = screenText(screen);
  return scrolled === "" ? now : now === "" ? scrolled : `${scrolled.endsWith("\n") ? scrolled : `${scrolled}\n`}${now}`;
}

function readAll(path: string): string {
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function follow(info: LogsInfo, options: { json: boolean; raw: boolean }, client: DaemonClient): Promise<number> {
  const { json } = options;
  const queries = options.raw ? null : new QueryFilter();
  const decoder = new StringDecoder("utf8");
  return new Promise((resolve) => {
    let offset = 0;
    let watcher: FSWatcher | null = null;
    let done = false;
    const emit = (bytes: Buffer) => {
      if (bytes.length === 0) return;
      if (!queries && !json) {
        process.stdout.write(bytes);
        return;
      }
      const text = decoder.write(bytes);
      const data = queries ? queries.push(text) : text;
      if (data === "") return;
      if (json) process.stdout.write(`${JSON.stringify({ name: info.name, id: info.id, data })}\n`);
      else process.stdout.write(data);
    };
    const pump = () => {
      let fd: number;
      try {
        fd = openSync(info.path, "r");
      } catch {
        return; // not created yet
      }
      try {
        const chunk = Buffer.alloc(64 * 1024);
        for (;;) {
          const n = readSync(fd, chunk, 0, chunk.length, offset);
          if (n <= 0) break;
          offset += n;
          emit(chunk.subarray(0, n));
        }
      } finally {
        closeSync(fd);
      }
      if (!watcher) {
        try {
          watcher = watch(info.path, () => pump());
        } catch {
          // the poll below still covers it
        }
      }
    };
    const poll = setInterval(pump, 250);
    const stop = (code: number, message?: string) => {
      if (done) return;
      done = true;
      pump();
      clearInterval(poll);
      watcher?.close();
      client.close();
      if (message) note(message);
      resolve(code);
    };
    client.onEvent((e) => {
      if (e.type === "transition" && e.id === info.id && e.to.startsWith("destroyed")) stop(0, `troupe: ${info.name} was destroyed`);
    });
    client.onClose(() => stop(0, "troupe: the daemon went away; stopped following"));
    process.once("SIGINT", () => stop(0));
    pump();
  });
}
