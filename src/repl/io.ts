/**
 * The REPL's terminal: lines printed above the prompt while the user may be
 * typing, and piped input fed one line per prompt.
 */
import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface as ReadlineInterface } from "node:readline";
import type { REPLServer } from "node:repl";
import { PassThrough } from "node:stream";

/** Writes lines without garbling the prompt: above it when the user may be typing, plainly while a command runs. */
export class Printer {
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
export class LineGate {
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
