/**
 * `troupe repl`: an interactive inspector of the actor tree (DESIGN §2), on
 * node:repl. The daemon client is in scope as `troupe` (top-level await
 * works), with helpers and dot-commands that print the tree, a builder, its
 * transitions, mail and doctor reports, and a live watch of transitions and
 * mail printed above the prompt. Like the CLI it loads no heavy module: it
 * talks to the daemon over its socket.
 */
import type { EventEmitter } from "node:events";
import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface as ReadlineInterface } from "node:readline";
import { PassThrough } from "node:stream";
import repl, { type REPLEval, type REPLServer } from "node:repl";
import { join } from "node:path";
import { inspect, types } from "node:util";
import { agentAuth } from "../cli/client.js";
import type { SendRequest } from "../cli/connect.js";
import { builderTree } from "../cli/format.js";
import { colorEnabled, paint, type Paint } from "../cli/output.js";
import { NAME_PATTERN } from "../daemon/protocol.js";
import { TroupeError } from "../shared/errors.js";
import type { SupervisorEvent } from "../supervisor/types.js";
import { NameCache, completeName, namePrefix } from "./complete.js";
import { concerns, doctorText, errorLine, eventLine, historyTable, mailText, sentLines, troupeErrorParts } from "./format.js";
import { Session } from "./session.js";

export interface ReplOptions {
  input?: NodeJS.ReadStream;
  output?: NodeJS.WriteStream;
  /** Where the REPL keeps its history (default `.troupe/repl_history` of the workspace); "" keeps none. */
  historyFile?: string;
}

type Completer = (line: string, callback: (error: Error | null, result?: [string[], string]) => void) => void;

/** Writes lines without garbling the prompt: above it when the user may be typing, plainly while a command runs. */
class Printer {
  /** A command or an evaluation is running: its output comes before the next prompt. */
  busy = false;
  closed = false;
  server: REPLServer | null = null;

  constructor(
    private readonly output: NodeJS.WriteStream,
    private readonly terminal: boolean,
  ) {}

  print(text: string): void {
    const body = text.endsWith("\n") ? text : `${text}\n`;
    const server = this.server;
    if (this.busy || this.closed || server === null) {
      this.output.write(body);
      return;
    }
    if (!this.terminal) {
      this.output.write(`\n${body}`);
      return;
    }
    // Erase the prompt and what is typed after it, print, then draw them again below.
    const rows = server.getCursorPos().rows;
    if (rows > 0) moveCursor(this.output, 0, -rows);
    cursorTo(this.output, 0);
    clearScreenDown(this.output);
    // readline redraws from `rows` rows above where it thinks the cursor is: leave them blank
    this.output.write(body + "\n".repeat(rows));
    server.displayPrompt(true);
  }
}

/**
 * Feeds the REPL the lines of a non-terminal input one at a time: the next
 * line only once the REPL shows its prompt again, so that the answers of
 * async commands come in order and end of input waits for the last one.
 */
class LineGate {
  readonly stream = new PassThrough();
  private readonly queue: string[] = [];
  private ready = false;
  private ended = false;
  private readonly lines: ReadlineInterface;

  constructor(source: NodeJS.ReadableStream) {
    this.lines = createInterface({ input: source, crlfDelay: Infinity, terminal: false });
    this.lines.on("line", (line) => {
      this.queue.push(line);
      this.pump();
    });
    this.lines.on("close", () => {
      this.ended = true;
      this.pump();
    });
  }

  /** The REPL is ready for a line. */
  next(): void {
    this.ready = true;
    this.pump();
  }

  close(): void {
    this.lines.close();
    if (!this.stream.writableEnded) this.stream.end();
  }

  private pump(): void {
    if (!this.ready || this.stream.writableEnded) return;
    const line = this.queue.shift();
    if (line !== undefined) {
      this.ready = false;
      this.stream.write(`${line}\n`);
    } else if (this.ended) {
      this.stream.end();
    }
  }
}

interface Command {
  name: string;
  args: string;
  help: string;
  run(arg: string): Promise<void>;
}

/** Runs the REPL until `.exit` or Ctrl-D; resolves to the exit status. */
export async function runRepl(options: ReplOptions = {}): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const terminal = input.isTTY === true && output.isTTY === true;
  const color = colorEnabled(output);
  const p: Paint = paint(color);
  const printer = new Printer(output, terminal);
  const say = (text: string) => printer.print(text);
  const auth = agentAuth().auth ?? {};

  const session = await Session.open();
  /** Work the REPL started and has not finished: leaving waits for it. */
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    inflight.add(promise);
    const forget = () => inflight.delete(promise);
    promise.then(forget, forget);
    return promise;
  };
  // Tab never (re)starts a daemon: with the connection lost, it completes nothing.
  const names = new NameCache(async () => (await session.client.status({ all: true })).map((b) => b.name));

  // ---- watching -----------------------------------------------------------------
  let watching: { name: string | null; stop: () => void } | null = null;
  const startWatch = async (name: string | null, quiet = false): Promise<void> => {
    const client = await session.ready();
    watching?.stop();
    const listener = (event: SupervisorEvent) => {
      if (!concerns(event, name)) return;
      const line = eventLine(event, p);
      if (line !== null) say(line);
    };
    const stop = client.subscribe(listener);
    const entry = { name, stop };
    watching = entry;
    try {
      await client.subscribed();
    } catch (error) {
      stop();
      if (watching === entry) watching = null;
      throw error;
    }
    if (!quiet) say(p.dim(`watching ${name ?? "every builder"}: transitions and mail print as they happen (.unwatch stops)`));
  };
  const stopWatch = (): void => {
    if (!watching) return say(p.dim("not watching"));
    watching.stop();
    watching = null;
    say(p.dim("stopped watching"));
  };
  session.onLost = () => say(`${p.yellow("the daemon connection closed")}: the next command connects again (starting a daemon if none runs)`);
  session.onReconnect = () => {
    if (watching) {
      const name = watching.name;
      startWatch(name, true).then(
        () => say(p.dim(`watching ${name ?? "every builder"} again`)),
        (error: unknown) => say(describeError(error, p)),
      );
    }
  };

  // ---- helpers in scope -------------------------------------------------------------
  /** Promises of helpers: the REPL awaits them itself, so `tree()` prints without `await`. */
  const tasks = new WeakSet<Promise<unknown>>();
  const task = <T>(fn: () => Promise<T>): Promise<T> => {
    const promise = track(fn());
    tasks.add(promise);
    return promise;
  };
  const needName = (helper: string, value: unknown): string => {
    if (typeof value !== "string" || value === "") throw new TroupeError("USAGE", `${helper}(name): name a builder, e.g. ${helper}("fix-login")`);
    return value;
  };
  const helpers = {
    tree: (opts: { all?: boolean } = {}) =>
      task(async () => {
        say(builderTree(await (await session.ready()).status({ all: opts?.all === true }), p));
      }),
    builder: (name: string) => task(async () => (await session.ready()).get(needName("builder", name))),
    history: (name: string) =>
      task(async () => {
        const entries = await (await session.ready()).history(needName("history", name));
        say(historyTable(name, entries, p));
      }),
    mail: (name?: string, opts: { unread?: boolean } = {}) =>
      task(async () => {
        if (name !== undefined && typeof name !== "string") throw new TroupeError("USAGE", "mail(name?, { unread? }): name a builder, or nothing for your own inbox");
        say(mailText(await (await session.ready()).mail({ ...(name ? { name } : {}), ...(opts?.unread ? { unread: true } : {}) }, auth), p));
      }),
    send: (to: string, body: string, opts: Omit<SendRequest, "to" | "body"> = {}) =>
      task(async () => {
        if (typeof to !== "string" || typeof body !== "string") throw new TroupeError("USAGE", 'send(to, body, opts?): e.g. send("fix-login", "rebase first", { type: "dispatch" })');
        say(sentLines(await (await session.ready()).send({ ...opts, to, body }, auth), p));
      }),
    watch: (name?: string) =>
      task(async () => {
        if (name !== undefined && (typeof name !== "string" || !NAME_PATTERN.test(name))) throw new TroupeError("INVALID_NAME", `watch(name?): ${JSON.stringify(name)} is not a builder name`);
        await startWatch(name ?? null);
      }),
    unwatch: () => task(async () => stopWatch()),
    doctor: (opts: { fix?: boolean } = {}) =>
      task(async () => {
        say(doctorText(await (await session.ready()).doctor({ fix: opts?.fix === true }), p));
      }),
  };
  const install = (context: Record<string, unknown>) => {
    Object.defineProperty(context, "troupe", { get: () => session.client, configurable: true, enumerable: true });
    for (const [name, fn] of Object.entries(helpers)) Object.defineProperty(context, name, { value: fn, writable: true, configurable: true, enumerable: true });
  };

  // ---- the REPL -----------------------------------------------------------------------
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
    writer: (value: unknown) => {
      const parts = troupeErrorParts(value);
      if (parts) return errorLine(parts, p);
      const text = inspect(value, { ...repl.writer.options, colors: color });
      // node:repl's domain tags promises with async ids: noise next to "<pending>"
      return types.isPromise(value) ? text.replace(/,?\n?\s*\[(?:\u001b\[\d+m)?Symbol\((?:trigger_)?async_id_symbol\)(?:\u001b\[\d+m)?\]: [^\n,]*(?=[,\n}])/g, "").replace(/\{\s*([^\n]*?)\s*\}$/, "{ $1 }") : text;
    },
  });
  printer.server = server;
  if (gate) {
    const display = server.displayPrompt.bind(server);
    server.displayPrompt = (preserveCursor?: boolean) => {
      display(preserveCursor);
      gate.next();
    };
    gate.next();
  }
  install(server.context);
  server.on("reset", install);

  /** Set once leaving has closed the connection. */
  let exiting = false;
  // Helper promises are awaited here; a troupe error becomes one line, not a stack trace.
  const evaluate = server.eval;
  (server as { eval: REPLEval }).eval = function (this: REPLServer, code, context, file, callback) {
    printer.busy = true;
    const done = (error: Error | null, result?: unknown) => {
      printer.busy = false;
      callback(error, result);
    };
    evaluate.call(this, code, context, file, (error, result) => {
      if (error === null && result instanceof Promise && tasks.has(result)) {
        result.then(
          (value) => done(null, value),
          (reason: unknown) => {
            const parts = troupeErrorParts(reason);
            if (!parts) return done(reason instanceof Error ? reason : new Error(String(reason)));
            output.write(`${errorLine(parts, p)}\n`);
            done(null, undefined);
          },
        );
        return;
      }
      done(error, result);
    });
  };
  // An awaited call that fails (`await troupe.get("x")`) reaches the REPL's error handler instead.
  // So does a promise of the REPL's that nobody awaited (`troupe.get("x")` without await): printed above the prompt.
  interceptErrors(server, (error) => {
    const evaluating = printer.busy;
    printer.busy = false;
    const parts = troupeErrorParts(error);
    if (!parts) return false;
    if (exiting) return true; // a call left pending when the connection closed at exit: nobody waits for it
    if (!evaluating) {
      say(errorLine(parts, p));
      return true;
    }
    output.write(`${errorLine(parts, p)}\n`);
    server.clearBufferedCommand();
    const lines = (server as unknown as { lines?: { level?: unknown[] } }).lines;
    if (lines && Array.isArray(lines.level)) lines.level = [];
    server.displayPrompt();
    return true;
  });
  // A helper's promise nobody awaited (`const t = tree()` that fails) must not end the REPL.
  const onUnhandled = (reason: unknown) => {
    // calls still pending when the REPL closed its connection fail with DAEMON_UNREACHABLE: nobody is waiting for them
    if (!exiting) say(describeError(reason, p));
  };
  process.on("unhandledRejection", onUnhandled);

  // ---- dot-commands ------------------------------------------------------------------
  const oneName = (command: string, arg: string): string => {
    const [name, extra] = arg.split(/\s+/).filter(Boolean);
    if (name === undefined || extra !== undefined) throw new TroupeError("USAGE", `.${command} <name>: name one builder`);
    return name;
  };
  const flags = (command: string, arg: string, allowed: string[]): { words: string[]; flags: Set<string> } => {
    const words: string[] = [];
    const set = new Set<string>();
    for (const word of arg.split(/\s+/).filter(Boolean)) {
      if (!word.startsWith("--")) words.push(word);
      else if (allowed.includes(word)) set.add(word);
      else throw new TroupeError("USAGE", `.${command}: unknown option ${word}${allowed.length ? ` (known: ${allowed.join(", ")})` : ""}`);
    }
    return { words, flags: set };
  };
  const commands: Command[] = [
    {
      name: "tree",
      args: "[--all]",
      help: "the builders as a tree with their states (like `troupe status`); --all adds tombstones",
      run: async (arg) => {
        const { words, flags: set } = flags("tree", arg, ["--all"]);
        if (words.length > 0) throw new TroupeError("USAGE", ".tree [--all] takes no name");
        await helpers.tree({ all: set.has("--all") });
      },
    },
    {
      name: "builder",
      args: "<name>",
      help: "a builder's status object",
      run: async (arg) => {
        const status = await helpers.builder(oneName("builder", arg));
        say(inspect(status, { ...repl.writer.options, colors: color }));
      },
    },
    { name: "history", args: "<name>", help: "a builder's transitions: time, from → to, event", run: (arg) => helpers.history(oneName("history", arg)) },
    {
      name: "mail",
      args: "[<name>] [--unread]",
      help: "an inbox, oldest first: the builder's, or by default yours",
      run: async (arg) => {
        const { words, flags: set } = flags("mail", arg, ["--unread"]);
        if (words.length > 1) throw new TroupeError("USAGE", ".mail [<name>] [--unread]: one name at most");
        await helpers.mail(words[0], { unread: set.has("--unread") });
      },
    },
    {
      name: "watch",
      args: "[<name>]",
      help: "print transitions and mail (of one builder, or all) as they happen",
      run: async (arg) => {
        const { words } = flags("watch", arg, []);
        if (words.length > 1) throw new TroupeError("USAGE", ".watch [<name>]: one name at most");
        await helpers.watch(words[0]);
      },
    },
    { name: "unwatch", args: "", help: "stop watching", run: async () => stopWatch() },
    {
      name: "doctor",
      args: "[--fix]",
      help: "compare the store with the world (processes, worktrees, sockets); --fix repairs",
      run: async (arg) => {
        const { words, flags: set } = flags("doctor", arg, ["--fix"]);
        if (words.length > 0) throw new TroupeError("USAGE", ".doctor [--fix] takes no name");
        await helpers.doctor({ fix: set.has("--fix") });
      },
    },
  ];
  for (const command of commands) {
    server.defineCommand(command.name, {
      help: command.help,
      action(arg: string) {
        printer.busy = true;
        this.clearBufferedCommand();
        void track(
          Promise.resolve()
            .then(() => command.run(arg.trim()))
            .catch((error: unknown) => output.write(`${describeError(error, p)}\n`))
            .finally(() => {
              printer.busy = false;
              if (!printer.closed) server.displayPrompt();
            }),
        );
      },
    });
  }
  server.defineCommand("help", {
    help: "list the commands and helpers",
    action() {
      output.write(`${helpText(commands, Object.keys(server.commands), p)}\n`);
      this.displayPrompt();
    },
  });

  // ---- completion of builder names ------------------------------------------------------
  const fallback = server.completer as Completer;
  (server as unknown as { completer: Completer }).completer = (line, callback) => {
    const prefix = namePrefix(line);
    if (prefix === null) return fallback.call(server, line, callback);
    names.get().then(
      (list) => callback(null, completeName(prefix, list)),
      () => callback(null, [[], prefix]),
    );
  };

  // ---- history and exit ------------------------------------------------------------------
  const historyFile = options.historyFile ?? join(session.workspace, ".troupe", "repl_history");
  server.setupHistory(historyFile, (error) => {
    if (error) say(p.dim(`(no REPL history: ${error.message})`));
  });

  return new Promise<number>((resolve) => {
    server.on("exit", () => {
      watching?.stop();
      watching = null;
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

/** `error CODE: message` for troupe errors; the message (and, with TROUPE_DEBUG, the stack) for anything else. */
function describeError(error: unknown, p: Paint): string {
  const parts = troupeErrorParts(error);
  if (parts) return errorLine(parts, p);
  if (error instanceof Error) return `${p.red("error")} ${process.env.TROUPE_DEBUG ? (error.stack ?? error.message) : error.message}`;
  return `${p.red("error")} ${inspect(error)}`;
}

/**
 * node:repl reports what an evaluation throws (including a rejected top-level
 * `await`) through the 'error' listeners of its domain, with "Uncaught" and a
 * stack. Troupe errors are expected answers of the daemon: `handle` prints
 * them as one line; everything else goes to node's handler as before. Without
 * that domain (another Node), the writer still prints `error CODE: message`.
 */
function interceptErrors(server: REPLServer, handle: (error: unknown) => boolean): void {
  const domain = (server as unknown as { _domain?: EventEmitter })._domain;
  if (!domain || typeof domain.listeners !== "function") return;
  const original = domain.listeners("error") as Array<(error: unknown) => void>;
  if (original.length === 0) return;
  domain.removeAllListeners("error");
  domain.on("error", (error: unknown) => {
    if (handle(error)) return;
    for (const fn of original) fn.call(domain, error);
  });
}

function helpText(commands: Command[], all: string[], p: Paint): string {
  const ours = commands.map((c) => [`.${c.name}${c.args ? ` ${c.args}` : ""}`, c.help] as const);
  const builtin = all.filter((name) => name !== "help" && !commands.some((c) => c.name === name)).sort();
  const rows = [...ours, [".help", "this list"] as const, [".exit", "leave (Ctrl-D too): the daemon and its builders keep running"] as const];
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    p.bold("Commands") + p.dim(" (Tab completes builder names)"),
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    `  ${p.dim(`node's own: ${builtin.filter((name) => name !== "exit").map((name) => `.${name}`).join(" ")}`)}`,
    "",
    p.bold("In scope") + p.dim(" (await works at the top level; helpers print, or return, without it)"),
    "  troupe                     the daemon client: await troupe.status(), troupe.get(name), troupe.history(name),",
    "                             troupe.spawn({ name, cmd }), troupe.stop(name), troupe.send({ to, body }), …",
    "  tree({ all? })             print the builder tree",
    "  builder(name)              a builder's status object",
    "  history(name)              print its transitions",
    "  mail(name?, { unread? })   print an inbox (yours by default)",
    "  send(to, body, opts?)      send mail; opts: type, subject, priority, threadId, payload",
    "  watch(name?), unwatch()    print transitions and mail as they happen",
    "  doctor({ fix? })           compare the store with the world",
  ].join("\n");
}
