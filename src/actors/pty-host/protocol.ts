/**
 * The wire protocol between a pty host and its clients (DESIGN §5): one JSON
 * object per line ("newline-delimited JSON") over a Unix socket.
 *
 * This module is imported by the CLI and by the pty host, so it depends on
 * node builtins only (the terminal emulator lives in screen.ts, host-only).
 *
 * A client opens with `hello`; the host answers `identity` (echoing the id),
 * `clients`, `screen` (only if the hello asked for it) and `scrollback`, then
 * streams `output` live, sends `clients` again whenever the attached clients
 * or the terminal size change, and sends `exit` once. Every other request that
 * carries an `id` gets exactly one `reply` with the same id; requests without
 * an id are fire-and-forget. Frames of an unknown type are to be ignored.
 */

import type { BuilderScreen } from "../../shared/contract.js";
import { TroupeError } from "../../shared/errors.js";

export const PROTOCOL_VERSION = 1;

/** Largest frame (one JSON line, in bytes) either side accepts. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Default scrollback ring size (the raw bytes replayed to a client that does not ask for the screen). */
export const DEFAULT_SCROLLBACK_BYTES = 256 * 1024;

/** Largest scrollback a host may keep (its replay is one frame: JSON may inflate it up to 6×). */
export const MAX_SCROLLBACK_BYTES = 8 * 1024 * 1024;

/** Largest frame a client accepts from its host (the host is trusted; this only bounds a runaway). */
export const MAX_HOST_FRAME_BYTES = 64 * 1024 * 1024;

/** Input is sent in pieces of at most this many UTF-16 units, well under MAX_FRAME_BYTES once encoded. */
export const INPUT_CHUNK_CHARS = 64 * 1024;

/** Lines the host's screen keeps above the visible rows, by default (a spec's `scrollbackLines`). */
export const DEFAULT_SCROLLBACK_LINES = 1000;
export const MAX_SCROLLBACK_LINES = 100_000;

/** Default time a host keeps an uncollected exit status before it exits by itself. */
export const DEFAULT_COLLECT_TIMEOUT_MS = 10 * 60_000;

/** How the agent ended: exactly one of code/signal is non-null (a lost agent may have neither). */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
  /** Epoch milliseconds. */
  at: number;
}

export interface PtyErrorInfo {
  code: "PTY_UNAVAILABLE";
  message: string;
  /** The Node ABI (`process.versions.modules`) of the host that failed to load node-pty. */
  abi: string;
  /** The Node binary of that host. */
  execPath: string;
}

// ---- client → host --------------------------------------------------------------

export interface HelloFrame {
  type: "hello";
  id?: number;
  protocol?: number;
  /** A name for this client, shown to the other clients (e.g. "troupe-attach"). */
  client?: string;
  /** Send the serialized screen (a `screen` frame) instead of the byte scrollback, which then comes empty. */
  screen?: boolean;
  /** This client's terminal size: the pty takes the smallest size any client reported. */
  cols?: number;
  rows?: number;
  /** Input and signals from this client are refused (`READ_ONLY`). */
  readOnly?: boolean;
}
export interface InputFrame {
  type: "input";
  id?: number;
  data: string;
}
export interface ResizeFrame {
  type: "resize";
  id?: number;
  cols: number;
  rows: number;
}
export interface SignalFrame {
  type: "signal";
  id?: number;
  signal: string;
  /** Signal the agent's whole tree (process group + descendants), not only the agent. */
  tree?: boolean;
}
export interface StopFrame {
  type: "stop";
  id?: number;
  /**
   * SIGKILL after this many ms. On a pty the tree gets SIGHUP first (what a
   * closing terminal sends) and SIGTERM after `hangupTimeoutMs`; on pipes,
   * SIGTERM at once.
   */
  killTimeoutMs?: number;
  /** How long SIGHUP has before SIGTERM (default 1000, never more than half of killTimeoutMs). */
  hangupTimeoutMs?: number;
}
/** The screen as text: replied with `screen`. */
export interface ScreenRequestFrame {
  type: "screen";
  id?: number;
}
/** The bytes that undo the agent's modes in this client's terminal: replied with `restore`. */
export interface RestoreRequestFrame {
  type: "restore";
  id?: number;
}
export interface CollectFrame {
  type: "collect";
  id?: number;
}
export interface StatusFrame {
  type: "status";
  id?: number;
}

export type ClientFrame = HelloFrame | InputFrame | ResizeFrame | SignalFrame | StopFrame | CollectFrame | StatusFrame | ScreenRequestFrame | RestoreRequestFrame;

// ---- host → client --------------------------------------------------------------

export interface HostIdentity {
  builderId: string;
  name: string;
  hostPid: number;
  hostStartTime: number | null;
  /** The agent's pid (a session and process-group leader). */
  pid: number;
  pidStartTime: number | null;
  /** True when the agent runs on a pseudo-terminal, false on plain pipes. */
  pty: boolean;
  /** Why the host fell back to pipes (pty: "auto"), else null. */
  ptyError: PtyErrorInfo | null;
  /** Epoch milliseconds. */
  startedAt: number;
  exit: ExitStatus | null;
  protocol: number;
}

export interface HostStatus extends HostIdentity {
  cols: number;
  rows: number;
  clients: number;
  scrollbackBytes: number;
  transcriptPath: string;
  /** The text transcript: `textTranscriptPath(transcriptPath)`. */
  textTranscriptPath: string;
  collected: boolean;
}

/** What a client writes to a fresh terminal of `cols`×`rows` to show the agent's screen, modes included. */
export interface ScreenSnapshot {
  data: string;
  cols: number;
  rows: number;
  /** The agent is in the alternate screen. */
  alternate: boolean;
}

/** The screen as plain text: a builder's screen (the contract's), without the builder. */
export type ScreenText = Omit<BuilderScreen, "name" | "id">;

/** One connection to the host, as the other clients see it. */
export interface ClientInfo {
  /** Unique within this host's life. */
  id: number;
  /** The `client` name of its hello, null if none. */
  client: string | null;
  /** Its terminal size, null until it reports one (the supervisor never does). */
  cols: number | null;
  rows: number | null;
  readOnly: boolean;
}

export interface IdentityFrame extends HostIdentity {
  type: "identity";
  id?: number;
}
export interface ScrollbackFrame {
  type: "scrollback";
  data: string;
}
export interface OutputFrame {
  type: "output";
  data: string;
}
export interface ExitFrame extends ExitStatus {
  type: "exit";
  /** The bytes that undo the agent's modes in this client's terminal ("" if none). */
  restore: string;
}
export interface ScreenFrame extends ScreenSnapshot {
  type: "screen";
}
export interface ClientsFrame {
  type: "clients";
  /** The receiving client's own id. */
  you: number;
  /** The pty's size now: the smallest any client reported. */
  cols: number;
  rows: number;
  /** Every client that said hello, the receiver included. */
  clients: ClientInfo[];
}
export interface ReplyOk {
  type: "reply";
  id: number;
  ok: true;
  /** stop/collect: the exit status. */
  exit?: ExitStatus;
  /** status: the host's status. */
  status?: HostStatus;
  /** screen: the screen as text. */
  screen?: ScreenText;
  /** restore: the bytes that undo the agent's modes in this client's terminal. */
  restore?: string;
}
export interface ReplyError {
  type: "reply";
  id: number;
  ok: false;
  error: { code: string; message: string };
}
export type ReplyFrame = ReplyOk | ReplyError;

export type HostFrame = IdentityFrame | ClientsFrame | ScreenFrame | ScrollbackFrame | OutputFrame | ExitFrame | ReplyFrame;

// ---- launch handshake (host → launcher, over fd 3, exactly one line) ---------------

export type ReadyMessage =
  | {
      ok: true;
      hostPid: number;
      hostStartTime: number | null;
      /** The agent's pid: a session and process-group leader. */
      pid: number;
      pidStartTime: number | null;
      /** False when the agent runs on pipes (pty "off", or "auto" after node-pty failed to load). */
      pty: boolean;
      /** Why node-pty was not used under pty "auto", else null. */
      ptyError: PtyErrorInfo | null;
      socketPath: string;
    }
  | {
      ok: false;
      error: { code: "PTY_UNAVAILABLE" | "SPAWN_FAILED" | "INVALID_ARGUMENT"; message: string; details?: Record<string, unknown> };
    };

/** The full launch specification the host reads (from its stdin) at start. */
export interface PtyHostSpec {
  builderId: string;
  name: string;
  /** argv of the agent; never run through a shell. */
  cmd: string[];
  cwd: string;
  env: Record<string, string>;
  pty: "auto" | "on" | "off";
  socketPath: string;
  transcriptPath: string;
  exitStatusPath: string;
  logPath: string;
  cols?: number;
  rows?: number;
  scrollbackBytes?: number;
  /** Lines of the screen's scrollback (default DEFAULT_SCROLLBACK_LINES), sent with the screen to a new client. */
  scrollbackLines?: number;
  collectTimeoutMs?: number;
}

/** What `ps` shows for the host of a builder (`ps -o args` starts with it). */
export function hostTitle(spec: Pick<PtyHostSpec, "name" | "builderId">): string {
  return `troupe pty-host ${spec.name} ${spec.builderId}`;
}

export { textTranscriptPath } from "../../shared/layout.js";

// ---- framing -------------------------------------------------------------------------

export function encodeFrame(frame: ClientFrame | HostFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

/**
 * Splits a byte stream into JSON lines. Decodes UTF-8 across chunk
 * boundaries; a line longer than `maxBytes` is an error (the peer is
 * misbehaving: the connection should be dropped).
 *
 * Only `troupe attach` (src/cli) still uses this: everything else frames with
 * the shared LineFramer. It stays self-contained because the CLI's import
 * check (test/cli/thin.test.ts) does not admit src/shared/lines.ts yet; once it
 * does, this becomes the LineFramer adapter of commit 005b6f9, or goes.
 */
export class LineDecoder {
  private pending = "";
  private readonly decoder = new TextDecoder("utf-8");

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Returns the complete lines in `chunk` (plus what was pending); throws when a line is too long. */
  push(chunk: Buffer | string): string[] {
    this.pending += typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = this.pending.indexOf("\n", start);
      if (newline < 0) break;
      const line = this.pending.slice(start, newline);
      if (line.trim() !== "") lines.push(line);
      start = newline + 1;
    }
    this.pending = this.pending.slice(start);
    // A UTF-16 length bounds the byte length from below by a factor of 3 at most; check cheaply first.
    if (this.pending.length > this.maxBytes || (this.pending.length * 3 > this.maxBytes && Buffer.byteLength(this.pending) > this.maxBytes)) {
      throw tooLong(this.maxBytes);
    }
    for (const line of lines) {
      if (line.length * 3 > this.maxBytes && Buffer.byteLength(line) > this.maxBytes) throw tooLong(this.maxBytes);
    }
    return lines;
  }
}

function tooLong(maxBytes: number): TroupeError {
  return new TroupeError("FRAME_TOO_LARGE", `frame longer than ${maxBytes} bytes: the peer is misbehaving; drop the connection`, { limit: maxBytes });
}

/** Splits `data` into pieces of at most `size` UTF-16 units, never between the halves of a surrogate pair. */
export function chunkText(data: string, size = INPUT_CHUNK_CHARS): string[] {
  if (data.length <= size) return [data];
  const pieces: string[] = [];
  let start = 0;
  while (start < data.length) {
    let end = Math.min(start + size, data.length);
    const last = data.charCodeAt(end - 1);
    if (end < data.length && last >= 0xd800 && last <= 0xdbff) end--;
    pieces.push(data.slice(start, end));
    start = end;
  }
  return pieces;
}

/** Parses one line into an object with a string `type`, or returns null. */
export function parseFrame(line: string): { type: string; id?: unknown; [key: string]: unknown } | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string") return null;
  return value as { type: string; id?: unknown };
}
