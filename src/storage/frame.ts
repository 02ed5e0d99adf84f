import { crc32 } from "node:zlib";
import type { Statement } from "./sql.js";

/**
 * The journal file format.
 *
 *   file   = "TRPJ" u32be(format) frame*
 *   frame  = u32be(payload length) u32be(seq high) u32be(seq low)
 *            u32be(crc32 of payload) u32be(crc32 of the 16 bytes before) payload
 *
 * The header has its own checksum so that a damaged length is told apart from
 * a tail cut short by a crash: a verified header whose payload runs past the
 * end of the file can only be a torn write.
 */
export const JOURNAL_FILE = "journal";
export const JOURNAL_MAGIC = "TRPJ";
export const JOURNAL_FORMAT = 1;
export const FILE_HEADER_BYTES = 8;
export const FRAME_HEADER_BYTES = 20;

/** One journal record: the statements of one write(), as one transaction. */
export interface RecordPayload {
  /** Schema version the statements were written against. */
  v: number;
  s: Statement[];
  /** Set on a migration record. */
  m?: 1;
}

export function fileHeader(): Buffer {
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  header.write(JOURNAL_MAGIC, 0, "latin1");
  header.writeUInt32BE(JOURNAL_FORMAT, 4);
  return header;
}

export function encodeFrame(seq: number, payload: RecordPayload): Buffer {
  const body = Buffer.from(JSON.stringify(payload), "utf8");
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.writeUInt32BE(Math.floor(seq / 2 ** 32), 4);
  frame.writeUInt32BE(seq >>> 0, 8);
  frame.writeUInt32BE(crc32(body), 12);
  frame.writeUInt32BE(crc32(frame.subarray(0, 16)), 16);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export interface FrameRef {
  seq: number;
  /** Offset of the frame in the file. */
  offset: number;
  /** Offset and end of the payload. */
  start: number;
  end: number;
}

export interface JournalScan {
  /** Format of the file header; null when the file is empty. */
  format: number | null;
  frames: FrameRef[];
  /** Where the intact prefix ends (preallocated zeros after it are not counted). */
  validBytes: number;
  totalBytes: number;
  /** The damaged end: from `offset`, `bytes` of data (trailing zeros not counted). */
  drop: { offset: number; bytes: number; reason: "torn" | "corrupt"; detail: string } | null;
}

/**
 * Checks every frame (lengths, checksums, consecutive sequence numbers);
 * parses none. Zeros after the last frame are preallocated space, not damage.
 * Damage is "torn" when no intact frame follows it (a write cut short by a
 * crash, possibly into preallocated zeros), "corrupt" when one does.
 */
export function scanJournal(buf: Buffer): JournalScan {
  const total = buf.length;
  const scan: JournalScan = { format: null, frames: [], validBytes: 0, totalBytes: total, drop: null };
  if (total === 0) return scan;
  const cut = (offset: number, reason: "torn" | "corrupt", detail: string): JournalScan => {
    // Preallocated zeros at the end are no data: they are neither counted nor kept.
    let end = total;
    while (end > offset && buf[end - 1] === 0) end--;
    scan.validBytes = offset;
    if (end > offset) scan.drop = { offset, bytes: end - offset, reason, detail };
    return scan;
  };
  if (total < FILE_HEADER_BYTES) {
    const isPrefix = Buffer.from(JOURNAL_MAGIC).subarray(0, Math.min(total, 4)).equals(buf.subarray(0, Math.min(total, 4)));
    return cut(0, isPrefix ? "torn" : "corrupt", "incomplete file header");
  }
  if (buf.toString("latin1", 0, 4) !== JOURNAL_MAGIC) return cut(0, "corrupt", "not a troupe journal (bad magic)");
  scan.format = buf.readUInt32BE(4);
  if (scan.format > JOURNAL_FORMAT) {
    scan.validBytes = total;
    return scan; // a newer format: the caller refuses it, nothing is judged
  }
  let offset = FILE_HEADER_BYTES;
  let expected: number | null = null;
  while (offset < total) {
    if (zeroTail(buf, offset)) break;
    const damaged = (detail: string, guessSeq: number): JournalScan =>
      cut(offset, laterFrame(buf, offset + 1, (expected ?? guessSeq) + 1) ? "corrupt" : "torn", detail);
    if (total - offset < FRAME_HEADER_BYTES) return cut(offset, "torn", "incomplete record header");
    const seq = buf.readUInt32BE(offset + 4) * 2 ** 32 + buf.readUInt32BE(offset + 8);
    if (crc32(buf.subarray(offset, offset + 16)) !== buf.readUInt32BE(offset + 16)) return damaged("record header checksum mismatch", seq);
    const start = offset + FRAME_HEADER_BYTES;
    const end = start + buf.readUInt32BE(offset);
    if (end > total) return cut(offset, "torn", "incomplete record payload");
    if (crc32(buf.subarray(start, end)) !== buf.readUInt32BE(offset + 12)) return damaged("record payload checksum mismatch", seq);
    if (expected !== null && seq !== expected) return cut(offset, "corrupt", `sequence ${seq} where ${expected} was expected`);
    scan.frames.push({ seq, offset, start, end });
    expected = seq + 1;
    offset = end;
  }
  scan.validBytes = offset;
  return scan;
}

/** True when an intact frame header carrying `seq` starts at or after `from`. */
function laterFrame(buf: Buffer, from: number, seq: number): boolean {
  if (!Number.isSafeInteger(seq) || seq < 0) return false;
  const pattern = Buffer.alloc(8);
  pattern.writeUInt32BE(Math.floor(seq / 2 ** 32), 0);
  pattern.writeUInt32BE(seq >>> 0, 4);
  for (let at = buf.indexOf(pattern, from + 4); at !== -1; at = buf.indexOf(pattern, at + 1)) {
    const header = at - 4;
    if (header + FRAME_HEADER_BYTES <= buf.length && crc32(buf.subarray(header, header + 16)) === buf.readUInt32BE(header + 16)) return true;
  }
  return false;
}

function zeroTail(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

export function parsePayload(buf: Buffer, frame: FrameRef): RecordPayload | null {
  try {
    const payload = JSON.parse(buf.toString("utf8", frame.start, frame.end)) as RecordPayload;
    if (typeof payload !== "object" || payload === null || typeof payload.v !== "number" || !Array.isArray(payload.s)) return null;
    return payload;
  } catch {
    return null;
  }
}
