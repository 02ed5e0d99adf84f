/**
 * Every place the REPL reaches into node:repl beyond its documented options,
 * in one file: each patch says why it is needed, so a Node upgrade that
 * breaks one is found here. Each degrades to node's plain behaviour when the
 * internal it needs is missing.
 */
import type { EventEmitter } from "node:events";
import repl, { type REPLEval, type REPLServer } from "node:repl";
import { inspect, types } from "node:util";

type Completer = (line: string, callback: (error: Error | null, result?: [string[], string]) => void) => void;

/**
 * Calls `onPrompt` each time the prompt is shown. Piped input needs it: node
 * reads a non-terminal input as fast as it arrives, so the answers of async
 * commands would come out of order and the end of input would close the REPL
 * before the last one; the caller feeds the next line only at the next prompt.
 */
export function onEachPrompt(server: REPLServer, onPrompt: () => void): void {
  const display = server.displayPrompt.bind(server);
  server.displayPrompt = (preserveCursor?: boolean) => {
    display(preserveCursor);
    onPrompt();
  };
}

export interface EvalHooks {
  /** A promise the REPL should await itself (a helper's), so `tree()` prints without `await`. */
  awaits(value: unknown): value is Promise<unknown>;
  /** An evaluation starts (true) or has answered (false). */
  busy(evaluating: boolean): void;
  /** What an awaited promise rejected with; true when it was handled (printed), so nothing more is shown. */
  rejected(reason: unknown): boolean;
}

/**
 * Wraps the REPL's eval: node prints a returned promise as `Promise { <pending> }`
 * and has no option to await it, so the helpers' promises are awaited here.
 */
export function awaitResults(server: REPLServer, hooks: EvalHooks): void {
  const evaluate = server.eval;
  (server as { eval: REPLEval }).eval = function (this: REPLServer, code, context, file, callback) {
    hooks.busy(true);
    const done = (error: Error | null, result?: unknown) => {
      hooks.busy(false);
      callback(error, result);
    };
    evaluate.call(this, code, context, file, (error, result) => {
      if (error !== null || !hooks.awaits(result)) return done(error, result);
      result.then(
        (value) => done(null, value),
        (reason: unknown) => {
          if (hooks.rejected(reason)) return done(null, undefined);
          done(reason instanceof Error ? reason : new Error(String(reason)));
        },
      );
    });
  };
}

/**
 * node:repl reports what an evaluation throws (including a rejected top-level
 * `await`, and a promise of the REPL's that nobody awaited) through the
 * 'error' listeners of its private domain, with "Uncaught" and a stack.
 * `handle` sees each error first; what it declines goes to node's handler as
 * before. Without that domain (another Node) nothing is intercepted, and the
 * writer still prints troupe errors as one line.
 */
export function interceptErrors(server: REPLServer, handle: (error: unknown) => boolean): void {
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

/**
 * What node's own error handler does after an error, for one we handled in
 * its place: forget the half-typed input, including the open brackets it
 * counts in `lines.level` (else the next line continues the failed one), and
 * prompt again.
 */
export function resetAfterError(server: REPLServer): void {
  server.clearBufferedCommand();
  const lines = (server as unknown as { lines?: { level?: unknown[] } }).lines;
  if (lines && Array.isArray(lines.level)) lines.level = [];
  server.displayPrompt();
}

/**
 * Puts `complete` before node's completer: the completer is fixed when the
 * REPL starts, and node's own (JavaScript, dot-command names) is still wanted
 * for every line `complete` declines (returns false for).
 */
export function completeFirst(server: REPLServer, complete: (line: string, callback: Parameters<Completer>[1]) => boolean): void {
  const fallback = server.completer as Completer;
  (server as unknown as { completer: Completer }).completer = (line, callback) => {
    if (!complete(line, callback)) fallback.call(server, line, callback);
  };
}

/** The names of node's own dot-commands (.break, .editor, …), beside ours. */
export function commandNames(server: REPLServer): string[] {
  return Object.keys(server.commands);
}

/** A value as node's writer shows it. */
export function show(value: unknown, color: boolean): string {
  const text = inspect(value, { ...repl.writer.options, colors: color });
  // node:repl's domain tags promises with async ids: noise next to "<pending>"
  return types.isPromise(value) ? text.replace(/,?\n?\s*\[(?:\u001b\[\d+m)?Symbol\((?:trigger_)?async_id_symbol\)(?:\u001b\[\d+m)?\]: [^\n,]*(?=[,\n}])/g, "").replace(/\{\s*([^\n]*?)\s*\}$/, "{ $1 }") : text;
}
