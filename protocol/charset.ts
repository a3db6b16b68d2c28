// Text values in the dataset's Specific Character Set (0008,0005), both ways: PS3.5 6.1.2.4-6.1.2.5
// (ISO 2022 code extensions: escape sequences switch G0/G1; the set of value 1 is active again at
// each value delimiter '\', each PN '^' and '=', and CR, LF, FF, TAB). Only SH, LO, ST, LT, UC, UT
// and PN use it (PS3.5 6.1.2.3); other VRs are ASCII. The characters of each set come from
// TextDecoder's tables (decoding, and inverted for encoding) and iconv-lite (GB18030's four-byte
// codes); what is ours is which set is active where.
import { TextDecoder } from 'node:util';
import iconv from 'iconv-lite';
import { CHARSET_TERMS, DESIGNATIONS } from './charset-terms.ts';
import type { CharsetTerm, Designation, GraphicSet } from './charset-terms.ts';

/** PS3.5 6.1.2.3: the VRs whose values use the Specific Character Set. */
export const CHARSET_VRS: ReadonlySet<string> = new Set(['SH', 'LO', 'ST', 'LT', 'UC', 'UT', 'PN']);
/** VRs that hold one value, where '\' is text, not a delimiter. */
const SINGLE_VALUE_VRS = new Set(['ST', 'LT', 'UT']);

export type Charset = {
  /** As the instance writes it: values joined with '\' ('' = the default repertoire). */
  text: string;
  terms: CharsetTerm[];
  /** Terms we do not know (their text is decoded as if they were absent). */
  unknown: string[];
};

const DEFAULT: CharsetTerm = CHARSET_TERMS.get('ISO_IR 6')!;
const DEFAULT_2022: CharsetTerm = CHARSET_TERMS.get('ISO 2022 IR 6')!;
const G0_ASCII = DEFAULT.g0!;

/** The Specific Character Set of an instance from the value(s) of (0008,0005); absent = default repertoire. */
export function parseCharset(value: string | readonly string[] | undefined): Charset {
  const values = (value === undefined ? [] : typeof value === 'string' ? value.split('\\') : [...value]).map((v) => v.trim());
  const terms: CharsetTerm[] = [];
  const unknown: string[] = [];
  values.forEach((v, i) => {
    const term = v === '' ? undefined : CHARSET_TERMS.get(v) ?? CHARSET_TERMS.get(v.replace(/^ISO[ _-]IR[ _-]?/i, 'ISO_IR ').toUpperCase());
    if (v !== '' && !term) unknown.push(v);
    // An empty (or unknown) value 1 is the default repertoire; with code extensions, ISO 2022 IR 6.
    if (term) terms.push(term);
    else if (i === 0) terms.push(values.length > 1 ? DEFAULT_2022 : DEFAULT);
  });
  if (terms.length === 0) terms.push(DEFAULT);
  while (values.length > 0 && values[values.length - 1] === '') values.pop();
  return { text: values.join('\\'), terms, unknown };
}

/** The dataset's character set in messages: '\ISO 2022 IR 87', or 'ISO_IR 6' for the default. */
export function charsetName(charset: Charset): string {
  return charset.text === '' ? 'ISO_IR 6 (default repertoire)' : charset.text;
}

const decoders = new Map<string, TextDecoder>();
function decoder(label: string): TextDecoder {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/** No byte above 0x7F and no ESC. */
function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f || bytes[i] === 0x1b) return false;
  return true;
}

type State = { g0: Designation; g1: Designation | undefined };

/**
 * What is active at the start of each value: value 1's sets. A 94x94 set named first ('ISO 2022 IR
 * 87' alone, as some writers put it) is not: text starts in ASCII and its escape sequences switch.
 * Reading, a KS X 1001 / GB 2312 value 1 stays in G1 (lenient to writers that omit the escape);
 * writing, it is designated by escape like the other values' sets.
 */
function initialState(charset: Charset, writing = false): State {
  const first = charset.terms[0];
  const g0 = first.g0 && first.g0.set.form === 'ascii' ? first.g0 : G0_ASCII;
  const g1 = first.g1 && (!writing || first.g1.set.form === 'sb') ? first.g1 : undefined;
  return { g0, g1 };
}

function isDelimiter(byte: number, vr: string): boolean {
  if (byte === 0x5c) return !SINGLE_VALUE_VRS.has(vr);
  return vr === 'PN' && (byte === 0x5e || byte === 0x3d);
}

const RESETTING_CONTROLS = new Set([0x09, 0x0a, 0x0c, 0x0d]);

function designationAt(bytes: Uint8Array, i: number): (typeof DESIGNATIONS)[number] | undefined {
  return DESIGNATIONS.find((d) => d.escape.length <= bytes.length - i && [...d.escape].every((c, k) => bytes[i + k] === c.charCodeAt(0)));
}

/** Characters of a 94x94 set in G0 (bytes 0x21-0x7E in pairs), or of a G1 set as written. */
function decodeRun(set: GraphicSet, run: Uint8Array, inG0: boolean): string {
  if (set.form === 'euc-3') {
    const out: number[] = [];
    for (let k = 0; k + 1 < run.length; k += 2) out.push(0x8f, run[k] | 0x80, run[k + 1] | 0x80);
    return decoder(set.decoder).decode(Uint8Array.from(out)) + (run.length % 2 === 1 ? '\ufffd' : '');
  }
  return decoder(set.decoder).decode(inG0 ? run.map((b) => b | 0x80) : run);
}

/**
 * A value's bytes as text (padding not removed; multiple values stay joined by '\'). Escape sequences
 * may designate any set we know, declared or not (lenient); high bytes with no G1 set designated are
 * read as ISO 8859-1, as a default-repertoire instance with Latin-1 in it usually means.
 */
export function decodeText(bytes: Uint8Array, charset: Charset, vr: string): string {
  // Most values are plain ASCII: the same in every character set the terms list.
  if (isAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const whole = charset.terms[0].whole;
  if (whole) return decoder(whole.decoder).decode(bytes);
  const init = initialState(charset);
  let { g0, g1 } = init;
  const reset = () => {
    g0 = init.g0;
    if (init.g1) g1 = init.g1;
  };
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    if (b === 0x1b) {
      const d = designationAt(bytes, i);
      if (d) {
        if (d.g === 0) g0 = { set: d.set, escape: d.escape };
        else g1 = { set: d.set, escape: d.escape };
        i += d.escape.length;
      } else {
        out += '\x1b';
        i++;
      }
      continue;
    }
    if (b < 0x20 || b === 0x7f) {
      out += String.fromCharCode(b);
      if (RESETTING_CONTROLS.has(b)) reset();
      i++;
      continue;
    }
    if (b < 0x80) {
      if (g0.set.form === 'ascii' || b === 0x20) {
        out += String.fromCharCode(b);
        if (isDelimiter(b, vr)) reset();
        i++;
        continue;
      }
      let j = i;
      while (j < bytes.length && bytes[j] > 0x20 && bytes[j] < 0x7f) j++;
      out += decodeRun(g0.set, bytes.subarray(i, j), true);
      i = j;
      continue;
    }
    if (b < 0xa0 || g1 === undefined) {
      out += String.fromCharCode(b); // C1 control, or Latin-1 where no G1 set is designated
      i++;
      continue;
    }
    let j = i;
    while (j < bytes.length && bytes[j] >= 0xa0) j++;
    out += decodeRun(g1.set, bytes.subarray(i, j), false);
    i = j;
  }
  return out;
}

// Encoding inverts the decoder: each set's table is built once, by decoding every code of the set
// with TextDecoder, so what we write always reads back the same (iconv-lite's tables disagree with
// WHATWG's on a few characters, e.g. JIS X 0208 1-33, read as U+FF5E). The first code wins.
const tables = new Map<string, Map<string, number[]>>();
function table(id: string, decoderLabel: string, codes: () => Iterable<number[]>): Map<string, number[]> {
  let t = tables.get(id);
  if (!t) {
    t = new Map();
    const d = decoder(decoderLabel);
    for (const code of codes()) {
      const ch = d.decode(Uint8Array.from(code));
      if (ch.length > 0 && [...ch].length === 1 && ch !== '\ufffd' && !t.has(ch)) t.set(ch, code);
    }
    tables.set(id, t);
  }
  return t;
}

function* range(from: number, to: number): Iterable<number> {
  for (let b = from; b <= to; b++) yield b;
}

function* pairs(leads: Iterable<number>, trails: () => Iterable<number>, prefix: number[] = []): Iterable<number[]> {
  for (const a of leads) for (const b of trails()) yield [...prefix, a, b];
}

function* rows(set: GraphicSet): Iterable<number> {
  for (const [from, to] of set.rows ?? [[0xa1, 0xfe]]) yield* range(from, to);
}

function setTable(set: GraphicSet): Map<string, number[]> {
  switch (set.form) {
    case 'ascii':
    case 'sb': return table(set.id, set.decoder, () => [...range(0xa0, 0xff)].map((b) => [b]));
    case 'euc': return table(set.id, set.decoder, () => pairs(rows(set), () => range(0xa1, 0xfe)));
    case 'euc-3': return table(set.id, set.decoder, () => pairs(rows(set), () => range(0xa1, 0xfe), [0x8f]));
  }
}

/** The two-byte codes of GBK (and of GB18030, which adds four-byte ones). */
function gbkTable(): Map<string, number[]> {
  return table('GBK', 'gbk', () => pairs(range(0x81, 0xfe), () => [...range(0x40, 0x7e), ...range(0x80, 0xfe)]));
}

/** One character in a set, as its bytes are written in G0 (0x21-0x7E) or G1 (0xA0-0xFF); undefined if the set lacks it. */
function encodeChar(set: GraphicSet, ch: string, inG0: boolean): number[] | undefined {
  if (set.form === 'ascii') return undefined;
  const code = setTable(set).get(ch);
  if (code === undefined) return undefined;
  if (set.form === 'euc-3') return [code[1] & 0x7f, code[2] & 0x7f];
  return inG0 ? code.map((b) => b & 0x7f) : code;
}

/** Text in UTF-8, GBK or GB18030 (no code extensions). */
function encodeWhole(text: string, encoder: 'utf8' | 'gbk' | 'gb18030'): Uint8Array | undefined {
  if (encoder === 'utf8') return Buffer.from(text, 'utf8');
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const code = cp < 0x80 ? [cp] : gbkTable().get(ch) ?? (encoder === 'gb18030' ? [...iconv.encode(ch, 'gb18030')] : undefined);
    if (code === undefined) return undefined;
    out.push(...code);
  }
  return Uint8Array.from(out);
}

function bytesOf(escape: string): number[] {
  return [...escape].map((c) => c.charCodeAt(0));
}

/**
 * `text` written in `charset` for an element of VR `vr` (no padding added), or undefined when the
 * character set cannot hold it. With code extensions, sets are tried in the order (0008,0005) lists
 * them, the active ones first; the set of value 1 is made active again before each delimiter and at
 * the end. The result is checked by decoding it back.
 */
export function encodeText(text: string, charset: Charset, vr: string): Uint8Array | undefined {
  let bytes: Uint8Array;
  const whole = charset.terms[0].whole;
  if (whole) {
    const encoded = encodeWhole(text, whole.encoder);
    if (encoded === undefined) return undefined;
    bytes = encoded;
  } else {
    const init = initialState(charset, true);
    let { g0, g1 } = init;
    const out: number[] = [];
    const reset = () => {
      if (g0.set !== init.g0.set) out.push(...bytesOf(init.g0.escape));
      if (init.g1 && g1 !== undefined && g1.set !== init.g1.set) out.push(...bytesOf(init.g1.escape));
      g0 = init.g0;
      g1 = init.g1;
    };
    const candidates: { d: Designation; g: 0 | 1 }[] = [];
    for (const t of charset.terms) {
      if (t.g0 && t.g0.set.form !== 'ascii') candidates.push({ d: t.g0, g: 0 });
      if (t.g1) candidates.push({ d: t.g1, g: 1 });
    }
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x80) {
        if (cp < 0x20 || cp === 0x7f ? RESETTING_CONTROLS.has(cp) : isDelimiter(cp, vr)) reset();
        else if (g0.set.form !== 'ascii') {
          const back = init.g0.set.form === 'ascii' ? init.g0 : G0_ASCII;
          out.push(...bytesOf(back.escape));
          g0 = back;
        }
        out.push(cp);
        continue;
      }
      const active = [g1 && { d: g1, g: 1 as const }, g0.set.form !== 'ascii' ? { d: g0, g: 0 as const } : undefined];
      let written = false;
      for (const c of [...active, ...candidates]) {
        if (!c) continue;
        const enc = encodeChar(c.d.set, ch, c.g === 0);
        if (!enc) continue;
        if (c.g === 0 && g0.set !== c.d.set) {
          out.push(...bytesOf(c.d.escape));
          g0 = c.d;
        } else if (c.g === 1 && g1?.set !== c.d.set) {
          out.push(...bytesOf(c.d.escape));
          g1 = c.d;
        }
        out.push(...enc);
        written = true;
        break;
      }
      if (!written) return undefined;
    }
    reset();
    bytes = Uint8Array.from(out);
  }
  return decodeText(bytes, charset, vr) === text ? bytes : undefined;
}
