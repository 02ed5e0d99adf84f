/**
 * The detach key sequence of `troupe attach`, in Docker's syntax
 * (`--detach-keys ctrl-p,ctrl-q`), and the filter that watches what the user
 * types for it. Node builtins only (the CLI loads it).
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../shared/errors.js";

/** Ctrl-], as telnet does it. */
export const DEFAULT_DETACH_KEYS = "ctrl-]";

/**
 * How long after the full sequence the client waits for its last key again
 * before it detaches: a doubled last key sends the sequence to the agent
 * (vim's Ctrl-] tag jump under the default key). About tmux's repeat time: a
 * person's double tap fits, a deliberate detach is barely delayed.
 */
export const DOUBLE_KEY_WINDOW_MS = 500;

export interface DetachKeys {
  /** The bytes the terminal sends for the sequence, in order. */
  bytes: Buffer;
  /** For people: `Ctrl-]`, `Ctrl-P Ctrl-Q`. */
  label: string;
}

/** ctrl-<key> → the control byte a terminal sends for it. */
const CONTROL_KEYS: Record<string, number> = { "@": 0x00, "[": 0x1b, "\\": 0x1c, "]": 0x1d, "^": 0x1e, _: 0x1f };
for (let code = 0x61; code <= 0x7a; code++) CONTROL_KEYS[String.fromCharCode(code)] = code - 0x60;

const SYNTAX = "a comma-separated sequence of ctrl-<a-z>, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or single characters, e.g. ctrl-p,ctrl-q";

/** Parses a sequence such as `ctrl-a,d`; `source` says where it came from (`--detach-keys`, a config file) in the error. */
export function parseDetachKeys(spec: string, source: string): DetachKeys {
  const bad = (why: string) => new UsageError(`${source}: ${JSON.stringify(spec)} is not a detach key sequence (${why}); write ${SYNTAX}`);
  if (spec === "") throw bad("it is empty");
  const bytes: number[] = [];
  const labels: string[] = [];
  for (const key of spec.split(",")) {
    if (key === "") throw bad("a key between commas is empty");
    const lower = key.toLowerCase();
    if (lower.startsWith("ctrl-") && key.length > 5) {
      const name = lower.slice(5);
      const byte = CONTROL_KEYS[name];
      if (byte === undefined) throw bad(`there is no control key ${JSON.stringify(key)}`);
      bytes.push(byte);
      labels.push(`Ctrl-${name.toUpperCase()}`);
    } else if (key.length === 1 && key >= " " && key <= "~") {
      bytes.push(key.charCodeAt(0));
      labels.push(key);
    } else {
      throw bad(`${JSON.stringify(key)} is neither ctrl-<key> nor a single printable ASCII character`);
    }
  }
  return { bytes: Buffer.from(bytes), label: labels.join(" ") };
}

/**
 * The detach sequence for this attach: the flag when given, else
 * `attach.detachKeys` in the workspace's `.troupe/config.json` when set, else
 * Ctrl-]. A config file that cannot be read as JSON, or a bad value in it, is
 * a usage error that names the file.
 */
export function resolveDetachKeys(flag: string | undefined, configFile: string | null): DetachKeys {
  if (flag !== undefined) return parseDetachKeys(flag, "--detach-keys");
  const configured = configFile ? configuredDetachKeys(configFile) : undefined;
  if (configured !== undefined) return parseDetachKeys(configured, `${configFile} attach.detachKeys`);
  return parseDetachKeys(DEFAULT_DETACH_KEYS, "the default detach keys");
}

function configuredDetachKeys(configFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(configFile, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read ${configFile} (${(error as Error).message}): fix its permissions, or pass --detach-keys`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${configFile} is not valid JSON (${(error as Error).message}): fix or remove it, or pass --detach-keys`);
  }
  const attach = isObject(config) ? config.attach : undefined;
  if (attach === undefined) return undefined;
  if (!isObject(attach)) throw new UsageError(`${configFile}: "attach" must be an object such as {"detachKeys": "ctrl-p,ctrl-q"}`);
  const keys = attach.detachKeys;
  if (keys === undefined) return undefined;
  if (typeof keys !== "string") throw new UsageError(`${configFile}: attach.detachKeys must be a string, ${SYNTAX}`);
  return keys;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export interface DetachEvents {
  /** Bytes for the agent, in the order typed. */
  forward(bytes: Buffer): void;
  /** The sequence was typed: the client detaches. Called at most once. */
  detach(): void;
}

/**
 * Watches typed bytes for the detach sequence. A prefix of the sequence is
 * held back until the next byte says whether it continues; one that does not
 * is forwarded as typed. The full sequence detaches after
 * DOUBLE_KEY_WINDOW_MS, unless its last key comes again first: then the
 * sequence goes to the agent once, and the client stays.
 */
export class DetachFilter {
  /** How many bytes of the sequence have been typed and held back. */
  private matched = 0;
  private doubleKeyTimer: NodeJS.Timeout | null = null;
  private lastCheck: NodeJS.Immediate | null = null;
  private detached = false;

  constructor(
    private readonly keys: DetachKeys,
    private readonly events: DetachEvents,
    private readonly windowMs = DOUBLE_KEY_WINDOW_MS,
  ) {}

  push(chunk: Buffer): void {
    const sequence = this.keys.bytes;
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.detached) return;
      if (this.doubleKeyTimer) {
        this.cancelTimer();
        this.matched = 0;
        if (byte === sequence[sequence.length - 1]) {
          out.push(...sequence);
          continue;
        }
        // Anything else after the full sequence: the user meant to detach.
        this.flush(out);
        return this.detachNow();
      }
      // A mismatch gives back the held bytes one at a time: their tail may still start the sequence.
      const held = [...sequence.subarray(0, this.matched), byte];
      this.matched = 0;
      for (let start = 0; start < held.length; start++) {
        const rest = held.slice(start);
        if (rest.every((b, i) => b === sequence[i])) {
          this.matched = rest.length;
          break;
        }
        out.push(held[start]!);
      }
      if (this.matched === sequence.length) {
        this.flush(out);
        this.doubleKeyTimer = setTimeout(() => {
          // Timers run before the loop reads input: on a stalled machine the second key may be
          // waiting unread. An immediate runs after that read, so it sees the key first.
          this.lastCheck = setImmediate(() => {
            this.lastCheck = null;
            this.doubleKeyTimer = null;
            this.detachNow();
          });
        }, this.windowMs);
      }
    }
    this.flush(out);
  }

  /** Input ended: a pending full sequence detaches now; a held prefix goes to the agent. */
  end(): void {
    if (this.detached) return;
    if (this.doubleKeyTimer) return this.detachNow();
    const out = [...this.keys.bytes.subarray(0, this.matched)];
    this.matched = 0;
    this.flush(out);
  }

  /** The client is going away for another reason: no timer may outlive it. */
  dispose(): void {
    this.cancelTimer();
    this.detached = true;
  }

  private flush(out: number[]): void {
    if (out.length === 0) return;
    this.events.forward(Buffer.from(out));
    out.length = 0;
  }

  private detachNow(): void {
    this.cancelTimer();
    this.detached = true;
    this.events.detach();
  }

  private cancelTimer(): void {
    if (this.doubleKeyTimer) clearTimeout(this.doubleKeyTimer);
    if (this.lastCheck) clearImmediate(this.lastCheck);
    this.doubleKeyTimer = null;
    this.lastCheck = null;
  }
}
