/**
 * The agent's screen, kept by the pty host (DESIGN §5): a headless xterm.js
 * fed everything the agent prints, so a client that attaches late gets the
 * screen the agent drew — not a byte ring cut in the middle of an escape
 * sequence — and `troupe screen`/`troupe logs` get text.
 *
 * Only the pty host loads this module (xterm.js is ~8 MB of RSS); the CLI's
 * modules (client.ts, protocol.ts) never import it.
 *
 * Output reaches clients only after the emulator parsed it (`write`'s
 * callback): at any moment between two callbacks the emulator's state is
 * exactly what every client has been sent, so a handshake or a restore
 * computed then needs no reconciling with frames still in flight.
 */
import { createRequire } from "node:module";
import type { Terminal as XtermTerminal } from "@xterm/headless";
import type { SerializeAddon as XtermSerializeAddon } from "@xterm/addon-serialize";
import { ModeTracker, type KittyView } from "./modes.js";
import { TextTranscript } from "./text-transcript.js";
import type { ScreenSnapshot, ScreenText } from "./protocol.js";

// Both packages are CommonJS bundles without named ESM exports.
const require = createRequire(import.meta.url);
const { Terminal } = require("@xterm/headless") as typeof import("@xterm/headless");
const { SerializeAddon } = require("@xterm/addon-serialize") as typeof import("@xterm/addon-serialize");

const ALT_SCREEN_SWITCH = "\x1b[?1049h\x1b[H";

export interface ScreenOptions {
  cols: number;
  rows: number;
  scrollbackLines: number;
  /** Plain pipes print "\n" alone: the emulator must return the carriage too. */
  convertEol: boolean;
  textTranscriptPath: string;
}

export class Screen {
  private readonly terminal: XtermTerminal;
  private readonly serializer: XtermSerializeAddon;
  readonly modes: ModeTracker;
  private readonly text: TextTranscript;
  private title = "";
  /** Characters written to the emulator and not parsed yet. */
  private queued = 0;
  private drainWaiters: Array<() => void> = [];

  constructor(options: ScreenOptions) {
    this.terminal = new Terminal({
      cols: options.cols,
      rows: options.rows,
      scrollback: options.scrollbackLines,
      convertEol: options.convertEol,
      allowProposedApi: true,
      logLevel: "off",
    });
    this.serializer = new SerializeAddon();
    this.terminal.loadAddon(this.serializer);
    this.modes = new ModeTracker(this.terminal);
    this.text = new TextTranscript(this.terminal, options.textTranscriptPath, options.scrollbackLines);
    this.terminal.onTitleChange((title) => (this.title = title));
  }

  get cols(): number {
    return this.terminal.cols;
  }

  get rows(): number {
    return this.terminal.rows;
  }

  /** Characters waiting to be parsed (the host pauses the agent when this grows). */
  get backlog(): number {
    return this.queued;
  }

  /** Feeds `data` to the emulator; `parsed` runs once it is part of the screen. */
  write(data: string, parsed: () => void): void {
    this.queued += data.length;
    this.terminal.write(data, () => {
      this.queued -= data.length;
      parsed();
      if (this.queued === 0) {
        // A quiet moment: scrolled-off lines go to the text transcript now, not at the next batch.
        this.text.flush();
        for (const wake of this.drainWaiters.splice(0)) wake();
      }
    });
  }

  /** Resolves once everything written so far is parsed. */
  drained(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  resize(cols: number, rows: number): void {
    if (cols !== this.terminal.cols || rows !== this.terminal.rows) this.terminal.resize(cols, rows);
  }

  /**
   * What a client writes to a fresh terminal of this size to show this
   * screen: the normal buffer with up to `scrollback` lines above it, the
   * alternate screen if it shows, the modes the serialize addon leaves out or
   * gets wrong, and the cursor. `view` is counted from here on for the
   * client's kitty keyboard entries.
   */
  snapshot(): { snapshot: ScreenSnapshot; view: KittyView } {
    const alternate = this.terminal.buffer.active.type === "alternate";
    const serialized = this.serializer.serialize({ excludeModes: true });
    // The addon appends the alternate screen after this switch; kitty entries are per screen, so each goes before its own.
    const split = alternate ? serialized.lastIndexOf(ALT_SCREEN_SWITCH) : -1;
    let data =
      split >= 0
        ? serialized.slice(0, split) + this.modes.kittyHandshake("main") + serialized.slice(split) + this.modes.kittyHandshake("alt")
        : serialized + this.modes.kittyHandshake("main");
    data += this.modes.handshake();
    const buffer = this.terminal.buffer.active;
    // Absolute, last: a mode above (origin, say) may have moved the cursor the addon placed.
    data += `\x1b[${buffer.cursorY + 1};${buffer.cursorX + 1}H`;
    const view = this.modes.attachView();
    return { snapshot: { data, cols: this.cols, rows: this.rows, alternate }, view };
  }

  /** The screen as text, one string per row (trailing blanks trimmed). */
  screenText(): ScreenText {
    const buffer = this.terminal.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < this.terminal.rows; y++) lines.push(buffer.getLine(buffer.baseY + y)?.translateToString(true) ?? "");
    // Someone is reading: make the text transcript current too (it and `lines` then cover everything).
    this.text.flush();
    return {
      cols: this.cols,
      rows: this.rows,
      lines,
      cursor: { x: buffer.cursorX, y: buffer.cursorY, visible: !this.modes.cursorHidden },
      title: this.title,
      alternate: buffer.type === "alternate",
    };
  }

  restore(view: KittyView | null): string {
    return this.modes.restore(view);
  }

  /** Once the agent has exited and its output is parsed: the final screen goes to the text transcript. */
  async finish(): Promise<void> {
    await this.drained();
    await this.text.finish();
  }
}
