/**
 * Terminal queries, taken out of a byte stream before it is written to the
 * user's terminal (`troupe logs`). A query makes the terminal answer by
 * typing: replayed at a shell prompt, `ESC[6n` becomes `^[[2;1R` on the
 * command line. Everything that only draws is left as it is.
 */

// CSI [private] params [intermediates] final, where the final asks for a report:
//   n  device status / cursor position (DSR, DECXCPR)     c  device attributes (DA1/DA2/DA3)
//   $p mode state (DECRQM)                                 >q terminal version (XTVERSION)
//   ?u kitty keyboard flags                                t  window reports (XTWINOPS 11, 13, 14, 16, 18, 19, 20, 21)
const CSI_QUERY = /\x1b\[(?:[?>=]?[0-9;]*[nc]|[?]?[0-9;]*\$p|>[0-9;]*q|\?u|(?:1[134689]|2[01])(?:;[0-9;]*)?t)/g;
// DCS $ q … ST (DECRQSS) and DCS + q … ST (XTGETTCAP): requests for settings and capabilities.
const DCS_QUERY = /\x1bP[$+]q[^\x1b\x07]*(?:\x1b\\|\x07)/g;
// OSC colour and clipboard queries: OSC 4;n;? / 10-19;? / 52;c;? … (BEL or ST).
const OSC_QUERY = /\x1b\](?:4;\d+|1[0-9]|52;[a-z]*);\?(?:\x1b\\|\x07)/g;

/** An escape sequence cut at the end of a chunk: kept for the next one (at most this long). */
const MAX_CARRY = 256;

/** Removes queries from a stream given in chunks; sequences split across chunks are seen whole. */
export class QueryFilter {
  private carry = "";

  push(chunk: string): string {
    let text = this.carry + chunk;
    this.carry = "";
    const cut = unfinishedEscapeAt(text);
    if (cut !== -1 && text.length - cut <= MAX_CARRY) {
      this.carry = text.slice(cut);
      text = text.slice(0, cut);
    }
    return withoutQueries(text);
  }

  /** What is left at the end of the stream. */
  end(): string {
    const rest = withoutQueries(this.carry);
    this.carry = "";
    return rest;
  }
}

export function withoutQueries(text: string): string {
  return text.replace(CSI_QUERY, "").replace(DCS_QUERY, "").replace(OSC_QUERY, "");
}

/** Where an escape sequence starts that the text ends before finishing, or -1. */
function unfinishedEscapeAt(text: string): number {
  const at = text.lastIndexOf("\x1b");
  if (at === -1) return -1;
  const tail = text.slice(at);
  if (tail.length === 1) return at;
  const kind = tail[1];
  if (kind === "[") return /^\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]/.test(tail) ? -1 : at;
  if (kind === "]" || kind === "P") return /\x07|\x1b\\/.test(tail) ? -1 : at;
  return -1;
}
