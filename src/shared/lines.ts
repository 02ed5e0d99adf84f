/**
 * The one newline-delimited framer: every socket of troupe speaks one JSON
 * object per line (the pty host's protocol, the daemon's JSON-RPC, the CLI's
 * client), and each needs the same three things — lines cut across chunk
 * boundaries, multi-byte characters never split, and a bound on a line so a
 * runaway peer cannot grow our memory. Node builtins only: the CLI and the pty
 * host load it.
 *
 * Lines are cut on the byte 0x0A before decoding. In UTF-8 that byte never
 * occurs inside a multi-byte character, so a line decoded whole is always
 * decoded right, wherever the chunks were cut.
 */

export interface LineFramerOptions {
  /** The longest line accepted, in UTF-8 bytes without its newline. */
  maxLineBytes: number;
  /** Called for each complete line that is not blank (blank lines carry nothing in NDJSON). */
  onLine: (line: string) => void;
  /**
   * Called once when a line grows past `maxLineBytes`. The framer has stopped
   * by then: a peer that sends such a line is misbehaving, and what follows
   * the line cannot be framed with any confidence.
   */
  onOverflow: (limit: number) => void;
}

export class LineFramer {
  private parts: Buffer[] = [];
  private pendingBytes = 0;
  private stoppedFlag = false;

  constructor(private readonly options: LineFramerOptions) {}

  /** Whether the framer ignores further input (after an overflow or `stop()`). */
  get stopped(): boolean {
    return this.stoppedFlag;
  }

  /** Feeds a chunk; complete lines go to `onLine` in order, synchronously. */
  push(chunk: Buffer | string): void {
    if (this.stoppedFlag) return;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const max = this.options.maxLineBytes;
    let start = 0;
    while (!this.stoppedFlag) {
      const newline = bytes.indexOf(0x0a, start);
      if (newline === -1) break;
      const piece = bytes.subarray(start, newline);
      start = newline + 1;
      if (this.pendingBytes + piece.length > max) return this.overflow();
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.pendingBytes = 0;
      this.deliver(line);
    }
    if (this.stoppedFlag || start >= bytes.length) return;
    const rest = bytes.subarray(start);
    this.pendingBytes += rest.length;
    if (this.pendingBytes > max) return this.overflow();
    this.parts.push(rest);
  }

  /** The input ended: an unterminated last line is still a line. */
  end(): void {
    if (this.stoppedFlag) return;
    const rest = Buffer.concat(this.parts);
    this.parts = [];
    this.pendingBytes = 0;
    this.stoppedFlag = true;
    this.deliver(rest);
  }

  /** Drops what is pending and ignores everything after (the connection is going away). */
  stop(): void {
    this.stoppedFlag = true;
    this.parts = [];
    this.pendingBytes = 0;
  }

  private deliver(line: Buffer): void {
    const text = line.toString("utf8");
    // A regex stops at the first non-space character: no copy of a long line, unlike trim().
    if (/\S/.test(text)) this.options.onLine(text);
  }

  private overflow(): void {
    this.stop();
    this.options.onOverflow(this.options.maxLineBytes);
  }
}
