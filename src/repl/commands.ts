/**
 * The REPL's commands, one table: each entry defines its helper (a function
 * in scope, `tree()`), its dot-command (`.tree`) and its help, once. The
 * helpers return promises the REPL awaits itself (see node-repl.ts), so they
 * print without `await`.
 */
import type { Auth, SendRequest, SupervisorEvent, TroupeApi } from "../shared/contract.js";
import { TroupeError } from "../shared/errors.js";
import { builderNameProblem } from "../shared/vocabulary.js";
import { builderTree, historyTable } from "../term/builders.js";
import { mailList } from "../term/mail.js";
import type { Paint } from "../term/paint.js";
import { doctorText } from "../term/reports.js";
import { screenText } from "../term/screen.js";
import { concerns, eventLine, sentLines } from "./format.js";

/** What the commands need of the REPL around them. */
export interface ReplContext {
  /** The connected client (connecting again after a loss). */
  client(): Promise<TroupeApi & { subscribed(): Promise<void> }>;
  say(text: string): void;
  /** A value as the REPL's writer shows it. */
  show(value: unknown): string;
  p: Paint;
  /** The caller's identity for mail (an agent's token inside an agent). */
  auth: Auth;
}

export interface ReplCommand {
  name: string;
  /** The helper in scope, or none. */
  helper?: (...args: never[]) => Promise<unknown>;
  /** Its call and what it does, for .help ("In scope"); a helper may be described with another. */
  helperHelp?: readonly [usage: string, text: string];
  /** Runs `.name <arg>`, or none. */
  dot?: (arg: string) => Promise<void>;
  /** The dot-command's arguments and what it does, for .help. */
  dotHelp?: readonly [args: string, text: string];
  /** Its first argument is a builder name (Tab completes it). */
  takesName?: boolean;
}

/** The words of a dot-command's argument, and which of the `allowed` flags it has. */
function words(command: string, arg: string, allowed: string[]): { words: string[]; flags: Set<string> } {
  const plain: string[] = [];
  const flags = new Set<string>();
  for (const word of arg.split(/\s+/).filter(Boolean)) {
    if (!word.startsWith("--")) plain.push(word);
    else if (allowed.includes(word)) flags.add(word);
    else throw new TroupeError("USAGE", `.${command}: unknown option ${word}${allowed.length ? ` (known: ${allowed.join(", ")})` : ""}`);
  }
  return { words: plain, flags };
}

function oneName(command: string, arg: string): string {
  const [name, extra] = arg.split(/\s+/).filter(Boolean);
  if (name === undefined || extra !== undefined) throw new TroupeError("USAGE", `.${command} <name>: name one builder`);
  return name;
}

function needName(helper: string, value: unknown): string {
  if (typeof value !== "string" || value === "") throw new TroupeError("USAGE", `${helper}(name): name a builder, e.g. ${helper}("fix-login")`);
  return value;
}

export interface ReplCommands {
  /** In the order .help lists them. */
  list: ReplCommand[];
  /** After a reconnection: watches again what was watched; resolves to what (null: nothing was). */
  rewatch(): Promise<string | null>;
  /** Leaving: the watch ends without a word. */
  stopWatching(): void;
}

/** `task` wraps each helper's work so the REPL awaits it and waits for it before leaving. */
export function replCommands(ctx: ReplContext, task: <T>(fn: () => Promise<T>) => Promise<T>): ReplCommands {
  const { p, say } = ctx;
  let watching: { name: string | null; stop: () => void } | null = null;

  const startWatch = async (name: string | null, quiet = false): Promise<void> => {
    const client = await ctx.client();
    watching?.stop();
    const stop = client.subscribe((event: SupervisorEvent) => {
      if (!concerns(event, name)) return;
      const line = eventLine(event, p);
      if (line !== null) say(line);
    });
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

  const tree = (opts: { all?: boolean } = {}) => task(async () => say(builderTree(await (await ctx.client()).status({ all: opts?.all === true }), p)));
  const builder = (name: string) => task(async () => (await ctx.client()).get(needName("builder", name)));
  const history = (name: string) => task(async () => say(historyTable(name, await (await ctx.client()).history(needName("history", name)), p)));
  const screen = (name: string) =>
    task(async () => {
      say(screenText((await (await ctx.client()).screen(needName("screen", name))).lines));
    });
  const mail = (name?: string, opts: { unread?: boolean } = {}) =>
    task(async () => {
      if (name !== undefined && typeof name !== "string") throw new TroupeError("USAGE", "mail(name?, { unread? }): name a builder, or nothing for your own inbox");
      say(mailList(await (await ctx.client()).mail({ ...(name ? { name } : {}), ...(opts?.unread ? { unread: true } : {}) }, ctx.auth), p));
    });
  const send = (to: string, body: string, opts: Omit<SendRequest, "to" | "body"> = {}) =>
    task(async () => {
      if (typeof to !== "string" || typeof body !== "string") throw new TroupeError("USAGE", 'send(to, body, opts?): e.g. send("fix-login", "rebase first", { type: "dispatch" })');
      say(sentLines(await (await ctx.client()).send({ ...opts, to, body }, ctx.auth), p));
    });
  const watch = (name?: string) =>
    task(async () => {
      if (name !== undefined && builderNameProblem(name) !== null) throw new TroupeError("INVALID_NAME", `watch(name?): ${JSON.stringify(name)} is not a builder name`);
      await startWatch(name ?? null);
    });
  const unwatch = () =>
    task(async () => {
      if (!watching) return say(p.dim("not watching"));
      watching.stop();
      watching = null;
      say(p.dim("stopped watching"));
    });
  const doctor = (opts: { fix?: boolean } = {}) =>
    task(async () => say(doctorText(await (await ctx.client()).doctor({ fix: opts?.fix === true }), p, "doctor({ fix: true }) repairs them (or `troupe doctor --fix`).")));

  const list: ReplCommand[] = [
    {
      name: "tree",
      helper: tree,
      helperHelp: ["tree({ all? })", "print the builder tree"],
      dotHelp: ["[--all]", "the builders as a tree with their states (like `troupe status`); --all adds tombstones"],
      dot: async (arg) => {
        const { words: names, flags } = words("tree", arg, ["--all"]);
        if (names.length > 0) throw new TroupeError("USAGE", ".tree [--all] takes no name");
        await tree({ all: flags.has("--all") });
      },
    },
    {
      name: "builder",
      takesName: true,
      helper: builder,
      helperHelp: ["builder(name)", "a builder's status object"],
      dotHelp: ["<name>", "a builder's status object"],
      dot: async (arg) => say(ctx.show(await builder(oneName("builder", arg)))),
    },
    {
      name: "history",
      takesName: true,
      helper: history,
      helperHelp: ["history(name)", "print its transitions"],
      dotHelp: ["<name>", "a builder's transitions: time, from → to, event"],
      dot: (arg) => history(oneName("history", arg)),
    },
    {
      name: "screen",
      takesName: true,
      helper: screen,
      helperHelp: ["screen(name)", "print what its terminal shows now"],
      dotHelp: ["<name>", "what a builder's terminal shows now, as text"],
      dot: (arg) => screen(oneName("screen", arg)),
    },
    {
      name: "mail",
      takesName: true,
      helper: mail,
      helperHelp: ["mail(name?, { unread? })", "print an inbox (yours by default)"],
      dotHelp: ["[<name>] [--unread]", "an inbox, oldest first: the builder's, or by default yours"],
      dot: async (arg) => {
        const { words: names, flags } = words("mail", arg, ["--unread"]);
        if (names.length > 1) throw new TroupeError("USAGE", ".mail [<name>] [--unread]: one name at most");
        await mail(names[0], { unread: flags.has("--unread") });
      },
    },
    { name: "send", takesName: true, helper: send, helperHelp: ["send(to, body, opts?)", "send mail; opts: type, subject, priority, threadId, payload"] },
    {
      name: "watch",
      takesName: true,
      helper: watch,
      helperHelp: ["watch(name?), unwatch()", "print transitions and mail as they happen"],
      dotHelp: ["[<name>]", "print transitions and mail (of one builder, or all) as they happen"],
      dot: async (arg) => {
        const { words: names } = words("watch", arg, []);
        if (names.length > 1) throw new TroupeError("USAGE", ".watch [<name>]: one name at most");
        await watch(names[0]);
      },
    },
    { name: "unwatch", helper: unwatch, dotHelp: ["", "stop watching"], dot: () => unwatch() },
    {
      name: "doctor",
      helper: doctor,
      helperHelp: ["doctor({ fix? })", "compare the store with the world"],
      dotHelp: ["[--fix]", "compare the store with the world (processes, worktrees, sockets); --fix repairs"],
      dot: async (arg) => {
        const { words: names, flags } = words("doctor", arg, ["--fix"]);
        if (names.length > 0) throw new TroupeError("USAGE", ".doctor [--fix] takes no name");
        await doctor({ fix: flags.has("--fix") });
      },
    },
  ];
  return {
    list,
    rewatch: async () => {
      if (!watching) return null;
      const name = watching.name;
      await startWatch(name, true);
      return name ?? "every builder";
    },
    stopWatching: () => {
      watching?.stop();
      watching = null;
    },
  };
}

const SCOPE_COLUMN = 25;

/** The text of `.help`: our dot-commands, node's own, and what is in scope. */
export function helpText(commands: ReplCommand[], builtin: string[], p: Paint): string {
  const ours = commands.flatMap((c) => (c.dotHelp ? [[`.${c.name}${c.dotHelp[0] ? ` ${c.dotHelp[0]}` : ""}`, c.dotHelp[1]] as const] : []));
  const theirs = builtin.filter((name) => name !== "help" && name !== "exit" && !commands.some((c) => c.dot && c.name === name)).sort();
  const rows = [...ours, [".help", "this list"] as const, [".exit", "leave (Ctrl-D too): the daemon and its builders keep running"] as const];
  const width = Math.max(...rows.map(([left]) => left.length));
  const scope = (usage: string, text: string) => `  ${usage.padEnd(SCOPE_COLUMN)}  ${text}`;
  return [
    p.bold("Commands") + p.dim(" (Tab completes builder names)"),
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`),
    `  ${p.dim(`node's own: ${theirs.map((name) => `.${name}`).join(" ")}`)}`,
    "",
    p.bold("In scope") + p.dim(" (await works at the top level; helpers print, or return, without it)"),
    scope("troupe", "the daemon client: await troupe.status(), troupe.get(name), troupe.history(name),"),
    `  ${"".padEnd(SCOPE_COLUMN)}  troupe.spawn({ name, cmd }), troupe.stop(name), troupe.send({ to, body }), …`,
    ...commands.flatMap((c) => (c.helperHelp ? [scope(...c.helperHelp)] : [])),
  ].join("\n");
}
