/**
 * What `troupe attach` writes to the user's terminal besides the agent's
 * output: the screen it opens on, the bytes that give the terminal back on
 * detach, the rows it blanks when the shared pty is smaller than this
 * window, and the banner's note about other clients. Pure functions over
 * strings (the CLI loads this module: node builtins only, none at all here).
 *
 * The user's own screen is kept the way tmux and less keep it: attach enters
 * the terminal's alternate screen before it draws the agent's, and leaves it
 * last on the way out, so the shell's prompt and output are where they were.
 */
import type { ClientInfo } from "../actors/pty-host/protocol.js";

const CSI = "\x1b[";

/** Save the user's cursor and screen (DECSET 1049), then start from a blank one. */
export const OPEN_SCREEN = `${CSI}?1049h${CSI}H${CSI}2J`;

/**
 * Back to the user's own screen and cursor. Written after the host's restore
 * even when that already left the alternate screen: a second 1049l only
 * restores the same saved cursor again (xterm, VTE, xterm.js and tmux keep
 * the saved cursor per screen), so it is harmless.
 */
export const CLOSE_SCREEN = `${CSI}?1049l`;

/**
 * When the host vanished without saying what to undo (no exit frame, no
 * reply to `restore`): every mode a full-screen agent commonly turns on, off
 * — alternate screen, hidden cursor, mouse tracking and SGR reports, keypad,
 * cursor keys, focus events, bracketed paste, attributes. Kitty keyboard
 * entries are left alone: popping a count we do not know could pop the
 * user's own.
 */
export const FALLBACK_RESTORE =
  `${CSI}?1049l${CSI}?25h` + `${CSI}?1000l${CSI}?1002l${CSI}?1003l${CSI}?1006l` + `\x1b>${CSI}?1l` + `${CSI}?1004l${CSI}?2004l` + `${CSI}0m`;

/** How the serialize addon switches to the alternate screen it appends (src/actors/pty-host/screen.ts). */
const AGENT_ALT_SWITCH = `${CSI}?1049h${CSI}H`;

/**
 * The snapshot as this terminal must receive it. Attach is already in the
 * alternate screen (OPEN_SCREEN), where the agent's normal screen is drawn
 * first; the agent's own switch then does not clear it (tmux and xterm.js
 * ignore a 1049h in the alternate screen), so a blank is inserted right after
 * that switch, with the default pen so the blank takes no colour.
 */
export function screenForTerminal(data: string, alternate: boolean): string {
  if (!alternate) return data;
  const at = data.indexOf(AGENT_ALT_SWITCH);
  if (at < 0) return data;
  const end = at + AGENT_ALT_SWITCH.length;
  return `${data.slice(0, end)}${CSI}0m${CSI}2J${data.slice(end)}`;
}

export interface Size {
  cols: number;
  rows: number;
}

/**
 * Blanks what this window shows outside the agent's terminal when that is
 * smaller (another, smaller window is attached): the columns right of it on
 * its rows, and every row below it. Nothing the agent draws lands there, so
 * whatever was there is stale. The cursor then goes back to where the host
 * says it is (`cursor`, zero-based), which is where it was: the host answers
 * after every byte it sent before, and those were all written here. Returns
 * "" when the agent's terminal fills this window.
 */
export function blankOutside(pty: Size, window: Size, cursor: { x: number; y: number }): string {
  let out = "";
  if (pty.cols < window.cols) {
    for (let row = 1; row <= Math.min(pty.rows, window.rows); row++) out += `${CSI}${row};${pty.cols + 1}H${CSI}K`;
  }
  if (pty.rows < window.rows) out += `${CSI}${pty.rows + 1};1H${CSI}J`;
  return out ? `${out}${CSI}${cursor.y + 1};${cursor.x + 1}H` : "";
}

/** The other terminals attached (attach clients, or any client that reported a window size): not the supervisor's connection. */
export function otherTerminals(you: number, clients: ClientInfo[]): ClientInfo[] {
  return clients.filter((client) => client.id !== you && (client.client === "troupe-attach" || client.cols !== null));
}

/**
 * The banner's note on who else watches: "" when nobody does, else e.g.
 * "1 other terminal attached; the terminal is 80×24, the smallest" (the pty
 * follows the smallest window; said only when that is not this one).
 */
export function othersNote(you: number, clients: ClientInfo[], pty: Size, window: Size | null): string {
  const others = otherTerminals(you, clients);
  if (others.length === 0) return "";
  const readOnly = others.filter((client) => client.readOnly).length;
  let note = `${others.length} other terminal${others.length === 1 ? "" : "s"} attached`;
  if (readOnly > 0) note += ` (${readOnly === others.length ? "" : `${readOnly} `}read-only)`;
  if (window && (pty.cols < window.cols || pty.rows < window.rows)) note += `; the terminal is ${pty.cols}×${pty.rows}, the smallest`;
  return note;
}
