/**
 * `troupe repl`: an interactive inspector of the actor tree (DESIGN §2), on
 * node:repl. The daemon client is in scope as `troupe` (top-level await
 * works), with the helpers and dot-commands of commands.ts, and a live watch
 * of transitions and mail printed above the prompt. Like the CLI it loads no
 * heavy module: it talks to the daemon over its socket. What it patches of
 * node:repl is in node-repl.ts.
 */
import repl from "node:repl";
import { agentAuth } from "../client/discovery.js";
import { workspaceLayout } from "../shared/layout.js";
import { colorEnabled, paint, type Paint } from "../term/paint.js";
import { replCommands, helpText, type ReplCommand } from "./commands.js";
import { NameCache, completeName, nameCompletion } from "./complete.js";
import { describeError, troupeErrorLine } from "./format.js";
import { LineGate, Printer } from "./io.js";
import { awaitResults, commandNames, completeFirst, interceptErrors, onEachPrompt, resetAfterError, show } from "./node-repl.js";
import { Session } from "./session.js";

export interface ReplOptions {
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  /** Where the REPL keeps its history (default `.troupe/repl_history` of the workspace); "" keeps none. */
  historyFile?: string;
}

/** Runs the REPL until `.exit` or Ctrl-D; resolves to the exit status. */
export async function runRepl(options: ReplOptions = {}): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const terminal = input.isTTY === true && output.isTTY === true;
  const color = colorEnabled(output);
  const p = paint(color);
  const printer = new Printer(output, terminal);
  const say = (text: string) => printer.print(text);

  const session = await Session.open();
  /** Work the REPL started and has not finished: leaving waits for it. */
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    inflight.add(promise);
    const forget = () => inflight.delete(promise);
    promise.then(forget, forget);
    return promise;
  };
  /** Promises of helpers: the REPL awaits them itself, so `tree()` prints without `await`. */
  const tasks = new WeakSet<Promise<unknown>>();
  const commands = replCommands(
    { client: () => session.ready(), say, show: (value) => show(value, color), p, auth: agentAuth().auth ?? {} },
    (fn) => {
      const promise = track(fn());
      tasks.add(promise);
      return promise;
    },
  );
  session.onLost = () => say(`${p.yellow("the daemon connection closed")}: the next command connects again (starting a daemon if none runs)`);
  session.onReconnect = () => {
    commands.rewatch().then(
      (watched) => watched !== null && say(p.dim(`watching ${watched} again`)),
      (error: unknown) => say(describeError(error, p)),
    );
  };

  const builders = await session.client.status().then(
    (list) => list.length,
    () => null,
  );
  output.write(
    `${p.bold("troupe repl")} ${p.dim(`· workspace ${session.workspace} · daemon pid ${session.hello.pid}${builders === null ? "" : ` · ${builders} builder${builders === 1 ? "" : "s"}`}`)}\n` +
      `${p.dim("Type .help for the commands, .exit or Ctrl-D to leave (the daemon and its builders keep running).")}\n`,
  );
  // Piped input (`troupe repl < script`): one line at a time, each after the previous one answered.
  const gate = terminal ? null : new LineGate(input);
  const server = repl.start({
    prompt: `${p.cyan("troupe>")} `,
    input: gate?.stream ?? input,
    output,
    terminal,
    useColors: color,
    ignoreUndefined: true,
    preview: false,
    writer: (value: unknown) => troupeErrorLine(value, p) ?? show(value, color),
  });
  printer.server = server;
  if (gate) {
    onEachPrompt(server, () => gate.next());
    gate.next();
  }
  const install = (context: Record<string, unknown>) => {
    Object.defineProperty(context, "troupe", { get: () => session.client, configurable: true, enumerable: true });
    for (const command of commands.list) {
      if (command.helper) Object.defineProperty(context, command.name, { value: command.helper, writable: true, configurable: true, enumerable: true });
    }
  };
  install(server.context);
  server.on("reset", install);

  /** Set once leaving has closed the connection. */
  let exiting = false;
  // Helper promises are awaited; a troupe error becomes one line, not a stack trace.
  awaitResults(server, {
    awaits: (value): value is Promise<unknown> => value instanceof Promise && tasks.has(value),
    busy: (evaluating) => (printer.busy = evaluating),
    rejected: (reason) => {
      const line = troupeErrorLine(reason, p);
      if (line !== null) output.write(`${line}\n`);
      return line !== null;
    },
  });
  // An awaited call that fails (`await troupe.get("x")`) reaches the REPL's error handler instead.
  // So does a promise of the REPL's that nobody awaited (`troupe.get("x")` without await): printed above the prompt.
  interceptErrors(server, (error) => {
    const evaluating = printer.busy;
    printer.busy = false;
    const line = troupeErrorLine(error, p);
    if (line === null) return false;
    if (exiting) return true; // a call left pending when the connection closed at exit: nobody waits for it
    if (!evaluating) {
      say(line);
      return true;
    }
    output.write(`${line}\n`);
    resetAfterError(server);
    return true;
  });
  // A helper's promise nobody awaited (`const t = tree()` that fails) must not end the REPL.
  const onUnhandled = (reason: unknown) => {
    // calls still pending when the REPL closed its connection fail with DAEMON_UNREACHABLE: nobody is waiting for them
    if (!exiting) say(describeError(reason, p));
  };
  process.on("unhandledRejection", onUnhandled);

  defineDotCommands(server, commands.list, { printer, track, p, output });
  server.defineCommand("help", {
    help: "list the commands and helpers",
    action() {
      output.write(`${helpText(commands.list, commandNames(server), p)}\n`);
      this.displayPrompt();
    },
  });

  // Tab never (re)starts a daemon: with the connection lost, it completes nothing.
  const names = new NameCache(async () => (await session.client.status({ all: true })).map((b) => b.name));
  const namePrefix = nameCompletion(commands.list);
  completeFirst(server, (line, callback) => {
    const prefix = namePrefix(line);
    if (prefix === null) return false;
    names.get().then(
      (list) => callback(null, completeName(prefix, list)),
      () => callback(null, [[], prefix]),
    );
    return true;
  });

  const historyFile = options.historyFile ?? workspaceLayout(session.workspace).replHistoryFile;
  server.setupHistory(historyFile, (error) => {
    if (error) say(p.dim(`(no REPL history: ${error.message})`));
  });

  return new Promise<number>((resolve) => {
    server.on("exit", () => {
      commands.stopWatching();
      if (terminal) output.write("\n");
      gate?.close();
      // a command still running (Ctrl-D typed right after it) finishes first
      void Promise.allSettled([...inflight])
        .then(() => {
          printer.closed = true;
          exiting = true;
          return session.close();
        })
        .catch(() => undefined)
        .then(() => {
          setImmediate(() => process.off("unhandledRejection", onUnhandled));
          resolve(0);
        });
    });
  });
}

/** Each command's `.name`: its output comes before the next prompt, its error as one line. */
function defineDotCommands(
  server: repl.REPLServer,
  commands: ReplCommand[],
  io: { printer: Printer; track: <T>(promise: Promise<T>) => Promise<T>; p: Paint; output: NodeJS.WriteStream },
): void {
  for (const command of commands) {
    const { dot, dotHelp } = command;
    if (!dot || !dotHelp) continue;
    server.defineCommand(command.name, {
      help: dotHelp[1],
      action(arg: string) {
        io.printer.busy = true;
        this.clearBufferedCommand();
        void io.track(
          Promise.resolve()
            .then(() => dot(arg.trim()))
            .catch((error: unknown) => io.output.write(`${describeError(error, io.p)}\n`))
            .finally(() => {
              io.printer.busy = false;
              if (!io.printer.closed) server.displayPrompt();
            }),
        );
      },
    });
  }
}
