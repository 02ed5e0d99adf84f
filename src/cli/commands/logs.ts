import { closeSync, createReadStream, openSync, readSync, statSync, watch, type FSWatcher } from "node:fs";
import { connectDaemon } from "../../client/discovery.js";
import type { DaemonClient } from "../../client/rpc.js";
import type { LogsInfo } from "../../daemon/protocol.js";
import { checkName, parse } from "../args.js";
import { note, printJson } from "../output.js";

export const usage = `Usage: troupe logs <name> [--follow]

Prints the builder's transcript (everything its terminal showed), from
.troupe/logs/<name>/<id>.log. With --follow, keeps printing what comes next
until the builder is destroyed or you press Ctrl-C.

Options:
  -f, --follow   keep printing new output
  --json         print { name, id, path, content } (with --follow: one JSON line per chunk)
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { follow: { type: "boolean", short: "f" } }, usage, { min: 1, max: 1, names: ["name"] });
  const name = checkName(args.positionals[0]!);
  const client = await connectDaemon();
  let info: LogsInfo;
  try {
    info = await client.call("logs.path", { name });
    if (args.values.follow === true) await client.call("subscribe", { names: [name] });
  } catch (error) {
    client.close();
    throw error;
  }
  if (args.values.follow !== true) {
    client.close();
    if (args.json) {
      printJson({ ...info, content: info.exists ? readAll(info.path) : "" });
      return 0;
    }
    if (!info.exists) {
      note(`troupe: no transcript yet for ${name} (${info.path})`);
      return 0;
    }
    await new Promise<void>((resolve, reject) => createReadStream(info.path).on("error", reject).on("end", resolve).pipe(process.stdout, { end: false }));
    return 0;
  }
  return follow(info, args.json, client);
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

function follow(info: LogsInfo, json: boolean, client: DaemonClient): Promise<number> {
  return new Promise((resolve) => {
    let offset = 0;
    let watcher: FSWatcher | null = null;
    let done = false;
    const emit = (data: Buffer) => {
      if (data.length === 0) return;
      if (json) process.stdout.write(`${JSON.stringify({ name: info.name, id: info.id, data: data.toString("utf8") })}\n`);
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
