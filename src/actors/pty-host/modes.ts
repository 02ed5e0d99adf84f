/**
 * The terminal modes an agent can leave a client's terminal in, as the pty
 * host's emulator sees them (DESIGN §5). xterm.js tracks some of them itself
 * (`terminal.modes`, the active buffer); the rest it parses without telling
 * anyone, or ignores (kitty keyboard flags, modifyOtherKeys), so this module
 * watches the same byte stream through parser hooks that always return false:
 * xterm still does its own handling after them.
 *
 * Two outputs: the bytes that put a fresh terminal into the agent's modes
 * (after the serialized screen of a new client), and the bytes that undo
 * them (a client's detach, the agent's exit). The kitty keyboard stack is the
 * one mode that is not idempotent (push/pop), so each client has a KittyView
 * counting the entries its own terminal received.
 */
import type { IDisposable, Terminal } from "@xterm/headless";

const ESC = "\x1b";
const CSI = "\x1b[";

/** Kitty keyboard entries pushed into one client's terminal, per screen. */
export interface KittyView {
  main: number;
  alt: number;
  /** The client's own base flags were changed (`CSI = … u` on an empty stack). */
  mainBaseSet: boolean;
  altBaseSet: boolean;
}

type ScreenName = "main" | "alt";

/** Most entries a kitty stack holds (kitty itself keeps a few dozen; the oldest goes first). */
const KITTY_STACK_LIMIT = 64;
/** Mouse report encodings (1005 UTF-8, 1006 SGR, 1015 urxvt, 1016 SGR pixels): xterm.js keeps them private. */
const MOUSE_ENCODINGS = [1005, 1006, 1015, 1016] as const;
const MOUSE_TRACKING: Record<string, number> = { x10: 9, vt200: 1000, drag: 1002, any: 1003 };
/** Alternate scroll (wheel → arrow keys in the alternate screen): xterm.js ignores it, terminals honour it. */
const ALTERNATE_SCROLL = 1007;

// SGR attribute groups, one bit each: the pen is default when no bit is set.
const PEN = { weight: 1, italic: 2, underline: 4, blink: 8, inverse: 16, hidden: 32, strike: 64, fg: 128, bg: 256, overline: 512, underlineColor: 1024 } as const;
const SGR_SETS = new Map<number, number>([
  [1, PEN.weight], [2, PEN.weight], [3, PEN.italic], [4, PEN.underline], [21, PEN.underline], [5, PEN.blink], [6, PEN.blink],
  [7, PEN.inverse], [8, PEN.hidden], [9, PEN.strike], [53, PEN.overline],
]);
const SGR_RESETS = new Map<number, number>([
  [22, PEN.weight], [23, PEN.italic], [24, PEN.underline], [25, PEN.blink], [27, PEN.inverse], [28, PEN.hidden], [29, PEN.strike],
  [39, PEN.fg], [49, PEN.bg], [55, PEN.overline], [59, PEN.underlineColor],
]);

export class ModeTracker {
  cursorHidden = false;
  /** DECSCUSR style (`CSI Ps SP q`); 0 is the terminal's default. */
  cursorStyle = 0;
  /** modifyOtherKeys level (`CSI > 4 ; Pv m`); 0 is off. */
  modifyOtherKeys = 0;
  alternateScroll = false;
  /** How the agent entered the alternate screen (47, 1047 or 1049): it leaves it the same way. */
  altVariant = 1049;
  readonly mouseEncodings = new Set<number>();
  private pen = 0;
  private readonly kitty: Record<ScreenName, { stack: number[]; base: number }> = { main: { stack: [], base: 0 }, alt: { stack: [], base: 0 } };
  private readonly views = new Set<KittyView>();
  private readonly hooks: IDisposable[] = [];

  constructor(private readonly terminal: Terminal) {
    const parser = terminal.parser;
    const observe = (fn: (params: (number | number[])[]) => void) => (params: (number | number[])[]) => {
      fn(params);
      return false;
    };
    this.hooks.push(
      parser.registerCsiHandler({ prefix: "?", final: "h" }, observe((params) => this.privateModes(params, true))),
      parser.registerCsiHandler({ prefix: "?", final: "l" }, observe((params) => this.privateModes(params, false))),
      parser.registerCsiHandler({ intermediates: " ", final: "q" }, observe((params) => (this.cursorStyle = first(params, 0)))),
      parser.registerCsiHandler({ prefix: ">", final: "m" }, observe((params) => this.modifyKeys(params))),
      parser.registerCsiHandler({ final: "m" }, observe((params) => this.sgr(params))),
      parser.registerCsiHandler({ prefix: ">", final: "u" }, observe((params) => this.kittyPush(first(params, 0)))),
      parser.registerCsiHandler({ prefix: "<", final: "u" }, observe((params) => this.kittyPop(Math.max(1, first(params, 1))))),
      parser.registerCsiHandler({ prefix: "=", final: "u" }, observe((params) => this.kittySet(first(params, 0), numberAt(params, 1, 1)))),
      parser.registerCsiHandler({ intermediates: "!", final: "p" }, observe(() => this.softReset())),
      parser.registerEscHandler({ final: "c" }, () => {
        this.hardReset();
        return false;
      }),
    );
  }

  dispose(): void {
    for (const hook of this.hooks.splice(0)) hook.dispose();
  }

  /** The kitty entries a client will have once it wrote `handshake()`: one per screen whose flags are set. */
  attachView(): KittyView {
    const view: KittyView = { main: this.flags("main") !== 0 ? 1 : 0, alt: this.altActive() && this.flags("alt") !== 0 ? 1 : 0, mainBaseSet: false, altBaseSet: false };
    this.views.add(view);
    return view;
  }

  /** A client that saw the agent's stream from an unknown point: only what it sees from now on is counted. */
  blankView(): KittyView {
    const view: KittyView = { main: 0, alt: 0, mainBaseSet: false, altBaseSet: false };
    this.views.add(view);
    return view;
  }

  detachView(view: KittyView): void {
    this.views.delete(view);
  }

  /** The kitty entry to push on `screen` of a fresh terminal ("" if none). */
  kittyHandshake(screen: ScreenName): string {
    const flags = this.flags(screen);
    return flags !== 0 ? `${CSI}>${flags}u` : "";
  }

  /** The modes (after the screen's content) that make a fresh terminal behave like the agent's. */
  handshake(): string {
    const modes = this.terminal.modes;
    let out = "";
    if (modes.applicationCursorKeysMode) out += `${CSI}?1h`;
    // ESC = rather than CSI ?66h: terminals that ignore DECNKM all honour DECKPAM.
    if (modes.applicationKeypadMode) out += `${ESC}=`;
    if (modes.bracketedPasteMode) out += `${CSI}?2004h`;
    if (modes.insertMode) out += `${CSI}4h`;
    if (modes.reverseWraparoundMode) out += `${CSI}?45h`;
    if (!modes.wraparoundMode) out += `${CSI}?7l`;
    if (modes.sendFocusMode) out += `${CSI}?1004h`;
    const tracking = MOUSE_TRACKING[modes.mouseTrackingMode];
    if (tracking !== undefined) out += `${CSI}?${tracking}h`;
    for (const encoding of MOUSE_ENCODINGS) if (this.mouseEncodings.has(encoding)) out += `${CSI}?${encoding}h`;
    if (this.alternateScroll) out += `${CSI}?${ALTERNATE_SCROLL}h`;
    if (this.modifyOtherKeys !== 0) out += `${CSI}>4;${this.modifyOtherKeys}m`;
    if (this.cursorStyle !== 0) out += `${CSI}${this.cursorStyle} q`;
    if (this.cursorHidden) out += `${CSI}?25l`;
    return out;
  }

  /**
   * The bytes that undo every mode the agent has on now, in a terminal that
   * received the kitty entries counted in `view`; "" when nothing is on.
   */
  restore(view: KittyView | null): string {
    const modes = this.terminal.modes;
    let out = "";
    if (this.altActive()) {
      out += kittyUndo(view?.alt ?? 0, view?.altBaseSet ?? false);
      out += `${CSI}?${this.altVariant}l`;
    }
    out += kittyUndo(view?.main ?? 0, view?.mainBaseSet ?? false);
    const tracking = MOUSE_TRACKING[modes.mouseTrackingMode];
    if (tracking !== undefined) out += `${CSI}?${tracking}l`;
    for (const encoding of MOUSE_ENCODINGS) if (this.mouseEncodings.has(encoding)) out += `${CSI}?${encoding}l`;
    if (this.alternateScroll) out += `${CSI}?${ALTERNATE_SCROLL}l`;
    if (modes.applicationCursorKeysMode) out += `${CSI}?1l`;
    if (modes.applicationKeypadMode) out += `${ESC}>`;
    if (modes.sendFocusMode) out += `${CSI}?1004l`;
    if (modes.bracketedPasteMode) out += `${CSI}?2004l`;
    if (modes.insertMode) out += `${CSI}4l`;
    if (modes.originMode) out += `${CSI}?6l`;
    if (modes.reverseWraparoundMode) out += `${CSI}?45l`;
    if (!modes.wraparoundMode) out += `${CSI}?7h`;
    if (modes.synchronizedOutputMode) out += `${CSI}?2026l`;
    // No value: the resource goes back to the terminal's own initial setting, not to "off".
    if (this.modifyOtherKeys !== 0) out += `${CSI}>4m`;
    if (this.cursorStyle !== 0) out += `${CSI}0 q`;
    if (this.cursorHidden) out += `${CSI}?25h`;
    if (this.pen !== 0) out += `${CSI}0m`;
    return out;
  }

  private altActive(): boolean {
    return this.terminal.buffer.active.type === "alternate";
  }

  private screen(): ScreenName {
    return this.altActive() ? "alt" : "main";
  }

  private flags(screen: ScreenName): number {
    const { stack, base } = this.kitty[screen];
    return stack.length > 0 ? stack[stack.length - 1]! : base;
  }

  private privateModes(params: (number | number[])[], on: boolean): void {
    for (const param of params) {
      const mode = Array.isArray(param) ? param[0] : param;
      if (mode === 25) this.cursorHidden = !on;
      else if (mode === ALTERNATE_SCROLL) this.alternateScroll = on;
      else if (mode === 47 || mode === 1047 || mode === 1049) {
        if (on) this.altVariant = mode;
      } else if ((MOUSE_ENCODINGS as readonly number[]).includes(mode ?? -1)) {
        if (on) this.mouseEncodings.add(mode!);
        else this.mouseEncodings.delete(mode!);
      }
    }
  }

  private modifyKeys(params: (number | number[])[]): void {
    // CSI > 4 ; Pv m sets modifyOtherKeys; CSI > 4 m (no value) resets it.
    if (first(params, -1) === 4) this.modifyOtherKeys = numberAt(params, 1, 0);
  }

  private sgr(params: (number | number[])[]): void {
    if (params.length === 0) {
      this.pen = 0;
      return;
    }
    for (let index = 0; index < params.length; index++) {
      const param = params[index]!;
      const code = Array.isArray(param) ? param[0]! : param;
      if (code === 0) this.pen = 0;
      else if (SGR_SETS.has(code)) this.pen |= SGR_SETS.get(code)!;
      else if (SGR_RESETS.has(code)) this.pen &= ~SGR_RESETS.get(code)!;
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) this.pen |= PEN.fg;
      else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) this.pen |= PEN.bg;
      else if (code === 38 || code === 48 || code === 58) {
        this.pen |= code === 38 ? PEN.fg : code === 48 ? PEN.bg : PEN.underlineColor;
        // 38;5;n and 38;2;r;g;b without colons: the colour's numbers follow as plain params.
        if (!Array.isArray(param)) index += params[index + 1] === 5 ? 2 : params[index + 1] === 2 ? 4 : 0;
      }
    }
  }

  private kittyPush(flags: number): void {
    const screen = this.screen();
    const stack = this.kitty[screen].stack;
    stack.push(flags);
    if (stack.length > KITTY_STACK_LIMIT) stack.shift();
    for (const view of this.views) view[screen]++;
  }

  private kittyPop(count: number): void {
    const screen = this.screen();
    const state = this.kitty[screen];
    state.stack.splice(Math.max(0, state.stack.length - count));
    // Kitty: a pop that empties the stack resets the flags.
    if (state.stack.length === 0) state.base = 0;
    for (const view of this.views) view[screen] = Math.max(0, view[screen] - count);
  }

  private kittySet(flags: number, how: number): void {
    const screen = this.screen();
    const state = this.kitty[screen];
    const current = this.flags(screen);
    const next = how === 2 ? current | flags : how === 3 ? current & ~flags : flags;
    if (state.stack.length > 0) state.stack[state.stack.length - 1] = next;
    else state.base = next;
    for (const view of this.views) {
      if (view[screen] > 0) continue;
      if (screen === "main") view.mainBaseSet = true;
      else view.altBaseSet = true;
    }
  }

  /** DECSTR: the cursor shows again and the pen resets; keyboard protocols and mouse stay (as in xterm). */
  private softReset(): void {
    this.cursorHidden = false;
    this.pen = 0;
  }

  /** RIS: the terminal starts over, this client's kitty entries included. */
  private hardReset(): void {
    this.cursorHidden = false;
    this.cursorStyle = 0;
    this.modifyOtherKeys = 0;
    this.alternateScroll = false;
    this.altVariant = 1049;
    this.mouseEncodings.clear();
    this.pen = 0;
    for (const screen of ["main", "alt"] as const) this.kitty[screen] = { stack: [], base: 0 };
    for (const view of this.views) Object.assign(view, { main: 0, alt: 0, mainBaseSet: false, altBaseSet: false });
  }
}

/** Pops what was pushed into a client's terminal, or resets flags set without a push. */
function kittyUndo(pushed: number, baseSet: boolean): string {
  if (pushed > 0) return `${CSI}<${pushed}u`;
  return baseSet ? `${CSI}=0;1u` : "";
}

function first(params: (number | number[])[], fallback: number): number {
  return numberAt(params, 0, fallback);
}

function numberAt(params: (number | number[])[], index: number, fallback: number): number {
  const param = params[index];
  const value = Array.isArray(param) ? param[0] : param;
  // xterm reports an omitted parameter as 0 (and `CSI > 4 m` as [4]).
  return value === undefined ? fallback : value;
}
