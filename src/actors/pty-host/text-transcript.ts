/**
 * The text transcript (`troupe logs` without `--raw`): what the agent's screen
 * showed, as text — every line that scrolled off the normal screen, in order,
 * and, when the agent has exited, its final screen. It is read from the
 * emulator's cells, so it never holds an escape sequence (a terminal query
 * included), and words the agent separated with cursor moves read as words.
 *
 * A marker on the normal buffer's first line not yet written follows the
 * scrollback as xterm trims it; lines are written in batches well before
 * they could be trimmed away, and before a "clear scrollback" (ED 3) or a
 * reset (RIS) throws them out. Rows a wrapped line spans are joined.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { IBuffer, IDisposable, IMarker, Terminal } from "@xterm/headless";
import { hostLog } from "./host-log.js";
import { errorText } from "./host-io.js";

/** At most this many scrolled-off lines wait in the emulator before they are written. */
const MAX_BATCH_LINES = 256;

export class TextTranscript {
  private marker: IMarker | null = null;
  /** Lines already written from the marker on (the marker moves only while the normal screen shows). */
  private written = 0;
  /** A logical line whose next row may still be a wrapped continuation. */
  private carry: string | null = null;
  private stream: WriteStream | null;
  private readonly batchLines: number;
  /** Scroll events since the last flush. */
  private scrolls = 0;
  private readonly hooks: IDisposable[] = [];

  constructor(
    private readonly terminal: Terminal,
    path: string,
    scrollbackLines: number,
  ) {
    this.batchLines = Math.max(1, Math.min(MAX_BATCH_LINES, Math.floor(scrollbackLines / 2)));
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const stream = createWriteStream(path, { flags: "a", mode: 0o600 });
    stream.on("error", (error) => {
      hostLog("error", "text transcript write failed; text transcript disabled", { err: errorText(error), path });
      this.stream = null;
    });
    this.stream = stream;
    this.anchor();
    this.hooks.push(
      // Counting scrolls is cheaper than asking the buffer on each one; a scroll inside a
      // scroll region adds no line to the scrollback, so the count only ever runs ahead.
      terminal.onScroll(() => {
        if (++this.scrolls >= this.batchLines) this.flush();
      }),
      terminal.parser.registerCsiHandler({ final: "J" }, (params) => {
        if (params[0] === 3) this.flush();
        return false;
      }),
      terminal.parser.registerEscHandler({ final: "c" }, () => {
        this.flush();
        this.marker?.dispose();
        this.marker = null;
        return false;
      }),
    );
  }

  /** Scrolled-off lines not written yet. */
  pending(): number {
    if (!this.marker || this.marker.isDisposed) return 0;
    return this.terminal.buffer.normal.baseY - (this.marker.line + this.written);
  }

  /** Writes every line that has scrolled off so far. */
  flush(): void {
    this.scrolls = 0;
    const normal = this.terminal.buffer.normal;
    if (!this.marker || this.marker.isDisposed) {
      // Only after a reset (the buffer was replaced): start again from its top.
      if (this.anchor(0)) this.written = 0;
      if (!this.marker) return;
    }
    const from = this.marker.line + this.written;
    const to = normal.baseY;
    if (from >= to) return;
    let text = this.joinRows(normal, from, to);
    // The last row is complete unless the first row on screen continues it.
    if (this.carry !== null && !normal.getLine(to)?.isWrapped) {
      text += `${this.carry}\n`;
      this.carry = null;
    }
    this.write(text);
    if (this.terminal.buffer.active.type === "normal") this.anchor();
    else this.written += to - from;
  }

  /** Writes what is left and the final screen, then closes the file. */
  finish(): Promise<void> {
    this.flush();
    for (const hook of this.hooks.splice(0)) hook.dispose();
    const normal = this.terminal.buffer.normal;
    let text = this.joinRows(normal, normal.baseY, normal.baseY + this.terminal.rows);
    if (this.carry !== null) text += `${this.carry}\n`;
    this.carry = null;
    if (this.terminal.buffer.active.type === "alternate") {
      const alternate = this.terminal.buffer.alternate;
      text += this.joinRows(alternate, 0, this.terminal.rows);
      if (this.carry !== null) text += `${this.carry}\n`;
      this.carry = null;
    }
    this.write(text.replace(/\n+$/, "\n").replace(/^\n$/, ""));
    const stream = this.stream;
    this.stream = null;
    return stream ? new Promise((resolve) => stream.end(() => resolve())) : Promise.resolve();
  }

  /** Rows [from, to) as text: complete logical lines, each ending in "\n"; the last one stays in `carry`. */
  private joinRows(buffer: IBuffer, from: number, to: number): string {
    let text = "";
    for (let y = from; y < to; y++) {
      const row = buffer.getLine(y);
      if (!row) continue;
      // A row that continues on the next one keeps its trailing blanks: they are part of the text.
      const piece = row.translateToString(!buffer.getLine(y + 1)?.isWrapped);
      if (row.isWrapped && this.carry !== null) {
        this.carry += piece;
      } else {
        if (this.carry !== null) text += `${this.carry}\n`;
        this.carry = piece;
      }
    }
    return text;
  }

  private write(text: string): void {
    if (text !== "") this.stream?.write(text);
  }

  /** Puts the marker on the normal screen's first row (or `line`); false while the alternate screen shows. */
  private anchor(line?: number): boolean {
    const normal = this.terminal.buffer.normal;
    if (this.terminal.buffer.active.type !== "normal") return false;
    const target = line ?? normal.baseY;
    const marker = this.terminal.registerMarker(target - (normal.baseY + normal.cursorY));
    if (!marker) return false;
    this.marker?.dispose();
    this.marker = marker;
    this.written = 0;
    return true;
  }
}
