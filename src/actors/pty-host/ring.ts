/**
 * A bounded scrollback of terminal output, in UTF-8 bytes. Node builtins only
 * (the pty host imports it). Small writes are coalesced so that a flood of
 * one-byte chunks costs no more memory than one large one.
 */
export class ScrollbackRing {
  private chunks: string[] = [];
  private sizes: number[] = [];
  private head = 0;
  private total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`scrollback capacity must be a positive integer, got ${capacity}`);
  }

  /** Bytes currently held. */
  get bytes(): number {
    return this.total;
  }

  push(data: string): void {
    if (data.length === 0) return;
    let size = Buffer.byteLength(data);
    if (size >= this.capacity) {
      this.chunks = [];
      this.sizes = [];
      this.head = 0;
      this.total = 0;
      data = tailBytes(data, this.capacity);
      size = Buffer.byteLength(data);
    }
    const last = this.chunks.length - 1;
    if (last >= this.head && this.sizes[last]! + size <= COALESCE_BYTES) {
      this.chunks[last] += data;
      this.sizes[last]! += size;
    } else {
      this.chunks.push(data);
      this.sizes.push(size);
    }
    this.total += size;
    while (this.total > this.capacity) {
      const firstSize = this.sizes[this.head]!;
      if (this.total - firstSize >= this.capacity) {
        this.chunks[this.head] = "";
        this.head++;
        this.total -= firstSize;
      } else {
        const keep = firstSize - (this.total - this.capacity);
        const trimmed = tailBytes(this.chunks[this.head]!, keep);
        const trimmedSize = Buffer.byteLength(trimmed);
        this.chunks[this.head] = trimmed;
        this.sizes[this.head] = trimmedSize;
        this.total -= firstSize - trimmedSize;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  toString(): string {
    return this.chunks.slice(this.head).join("");
  }
}

const COALESCE_BYTES = 4096;

/** The last `keep` bytes of `text`, never starting inside a UTF-8 sequence. */
function tailBytes(text: string, keep: number): string {
  const buffer = Buffer.from(text, "utf8");
  if (buffer.length <= keep) return text;
  let start = buffer.length - keep;
  while (start < buffer.length && (buffer[start]! & 0xc0) === 0x80) start++;
  return buffer.subarray(start).toString("utf8");
}
