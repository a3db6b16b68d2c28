// Attribute modification of the bytes before top-level Pixel Data (the prefix DatasetWalker
// delimits), in the dataset's own transfer syntax. Untouched top-level elements are copied byte
// for byte, including nested sequences; set elements are encoded afresh (PS3.5 6.2, 7.1) and
// placed at their ascending tag position; removed ones are dropped. Pixel Data and what follows
// stream through unchanged, so the header is all that is rewritten.
//
// Scope: only top-level elements can be changed. A nested path ("00081110.00081150" and the
// like) throws RewriteError 'nested-change'; so do file meta (0002), group length, item and Pixel
// Data tags ('not-allowed'). Group length elements (gggg,0000) present in the header are kept and
// recomputed: adjusted by the size change of their group's set/removed elements. That equals
// recomputing from the elements, and stays right for (7FE0,0000), whose group runs on past the
// header. Changing (0008,0005) does not re-encode other text already in the dataset.
//
// Text is written in the dataset's Specific Character Set (protocol/charset.ts, ISO 2022 escapes
// included). A value that set cannot hold follows the caller's CharsetPolicy: 'convert-to-utf8'
// re-encodes the whole header to ISO_IR 192 first (protocol/dataset-transcode.ts), 'refuse' throws
// RewriteError 'charset'.
import { CHARSET_VRS, charsetName, encodeText as encodeInCharset, parseCharset } from './charset.ts';
import { transcodeToUtf8 } from './dataset-transcode.ts';
import { dictionaryVr } from './ts-convert.ts';
import type { Encoding } from './ts-convert.ts';
import { transferSyntax } from './uids.ts';
import { ALL_VRS, ITEM, ITEM_DELIMITER, LONG_VRS, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from './data-elements.ts';

export type ChangeValue = string | number | (string | number)[];

export type Change = {
  /** 8 hex digits, upper-case: '00080080'. */
  tag: string;
  action: 'set' | 'remove';
  vr?: string;
  /** Strings for text VRs (PN as 'Family^Given'); numbers for binary ones; AT as 'GGGGEEEE'; arrays for multiple values. */
  value?: ChangeValue;
};

export type RewriteErrorCode =
  | 'nested-change'
  | 'bad-tag'
  | 'not-allowed'
  | 'unknown-vr'
  | 'unsupported-vr'
  | 'bad-value'
  | 'value-too-long'
  | 'unknown-transfer-syntax'
  | 'malformed'
  /** A value the Specific Character Set cannot hold, under the policy 'refuse' (or after (0008,0005) is set). */
  | 'charset';

/** What to do when a value to write does not fit the dataset's Specific Character Set. */
export type CharsetPolicy = 'convert-to-utf8' | 'refuse';

export class RewriteError extends Error {
  readonly code: RewriteErrorCode;
  readonly tag: string | undefined;
  constructor(code: RewriteErrorCode, message: string, tag?: string) {
    super(message);
    this.name = 'RewriteError';
    this.code = code;
    this.tag = tag;
  }
}

/** Where one top-level element sits in the header. */
export type ElementSpan = {
  tag: number;
  /** As written (explicit VR syntaxes only). */
  vr?: string;
  start: number;
  valueStart: number;
  /** Value length as written; 0xFFFFFFFF for undefined length. */
  length: number;
  /** After the value (and, for undefined length, after its sequence delimiter). */
  end: number;
};

const SPECIFIC_CHARACTER_SET = 0x00080005;
const PIXEL_REPRESENTATION = 0x00280103;
const IMPLICIT_LE: Encoding = { explicitVr: false, littleEndian: true };
const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
const BINARY_SIZE: Readonly<Record<string, number>> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8, AT: 4 };

function tagName(tag: number): string {
  return (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** The dataset encoding of a transfer syntax (deflated: the inflated bytes, Explicit VR LE). */
export function datasetEncoding(transferSyntaxUid: string): Encoding {
  const t = transferSyntax(transferSyntaxUid);
  if (t === undefined) throw new RewriteError('unknown-transfer-syntax', `unknown transfer syntax ${transferSyntaxUid}`);
  return { explicitVr: t.explicitVr, littleEndian: t.littleEndian };
}

export class Reader {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(pos: number, n: number, what: string): void {
    if (pos + n > this.bytes.length) throw new RewriteError('malformed', `${what} at offset ${pos} runs past the end of the header (${this.bytes.length} bytes)`);
  }
  tag(pos: number, enc: Encoding): number {
    this.need(pos, 8, 'header');
    return ((this.view.getUint16(pos, enc.littleEndian) << 16) | this.view.getUint16(pos + 2, enc.littleEndian)) >>> 0;
  }
  u32(pos: number, enc: Encoding): number {
    return this.view.getUint32(pos, enc.littleEndian);
  }
  /** An element header (PS3.5 7.1.1–7.1.3). */
  element(pos: number, enc: Encoding): { tag: number; vr?: string; headerSize: number; length: number } {
    const tag = this.tag(pos, enc);
    if (!enc.explicitVr) return { tag, headerSize: 8, length: this.u32(pos + 4, enc) };
    const vr = String.fromCharCode(this.bytes[pos + 4], this.bytes[pos + 5]);
    if (!ALL_VRS.has(vr)) throw new RewriteError('malformed', `invalid VR ${JSON.stringify(vr)} at offset ${pos + 4}`);
    if (!LONG_VRS.has(vr)) return { tag, vr, headerSize: 8, length: this.view.getUint16(pos + 6, enc.littleEndian) };
    this.need(pos, 12, 'header');
    return { tag, vr, headerSize: 12, length: this.u32(pos + 8, enc) };
  }
  /** From the first item of an undefined-length sequence (or fragments) to after its delimiter. */
  skipSequence(pos: number, enc: Encoding, depth: number): number {
    if (depth > 256) throw new RewriteError('malformed', `sequences nested too deep at offset ${pos}`);
    for (;;) {
      const tag = this.tag(pos, enc);
      const length = this.u32(pos + 4, enc);
      pos += 8;
      if (tag === SEQUENCE_DELIMITER) return pos;
      if (tag !== ITEM) throw new RewriteError('malformed', `expected an item at offset ${pos - 8}`);
      if (length !== UNDEFINED_LENGTH) {
        this.need(pos, length, 'item');
        pos += length;
        continue;
      }
      while (this.tag(pos, enc) !== ITEM_DELIMITER) pos = this.skipElement(pos, this.element(pos, enc), enc, depth);
      pos += 8;
    }
  }
  skipElement(pos: number, el: { vr?: string; headerSize: number; length: number }, enc: Encoding, depth: number): number {
    pos += el.headerSize;
    if (el.length !== UNDEFINED_LENGTH) {
      this.need(pos, el.length, 'value');
      return pos + el.length;
    }
    // PS3.5 6.2.2: an undefined-length UN holds an Implicit VR LE sequence.
    return this.skipSequence(pos, enc.explicitVr && el.vr === 'UN' ? IMPLICIT_LE : enc, depth + 1);
  }
}

/** The top-level elements of a dataset prefix, in order. Throws RewriteError 'malformed'. */
export function topLevelElements(header: Uint8Array, transferSyntaxUid: string): ElementSpan[] {
  const enc = datasetEncoding(transferSyntaxUid);
  const r = new Reader(header);
  const spans: ElementSpan[] = [];
  for (let pos = 0; pos < header.length; ) {
    const el = r.element(pos, enc);
    if (el.tag >>> 16 === 0xfffe) throw new RewriteError('malformed', `unexpected item tag ${tagName(el.tag)} at top level, offset ${pos}`);
    const end = r.skipElement(pos, el, enc, 0);
    const span: ElementSpan = { tag: el.tag, start: pos, valueStart: pos + el.headerSize, length: el.length, end };
    if (el.vr !== undefined) span.vr = el.vr;
    spans.push(span);
    pos = end;
  }
  return spans;
}

function parseTag(tag: string): number {
  if (typeof tag !== 'string' || !/^[0-9A-Fa-f]{8}$/.test(tag)) {
    // A path into a sequence ('00081110.00081150', '00081110[0]/00081150', ...).
    const nested = typeof tag === 'string' && /[./[\]>]/.test(tag);
    throw nested
      ? new RewriteError('nested-change', `only top-level elements can be changed; ${JSON.stringify(tag)} is a nested path`, tag)
      : new RewriteError('bad-tag', `tag must be 8 hex digits such as '00080080', got ${JSON.stringify(tag)}`, tag);
  }
  const n = parseInt(tag, 16) >>> 0;
  const group = n >>> 16;
  const why =
    group === 0x0002 ? 'file meta information is not part of the dataset' :
    group < 0x0008 || group === 0xffff ? 'not a dataset group' :
    (n & 0xffff) === 0 ? 'group lengths are maintained by the rewriter' :
    group === 0xfffe ? 'item tags are not elements' :
    n === 0x7fe00010 || n === 0x7fe00008 || n === 0x7fe00009 ? 'Pixel Data is outside the header' : undefined;
  if (why !== undefined) throw new RewriteError('not-allowed', `(${tag.slice(0, 4)},${tag.slice(4)}) cannot be changed: ${why}`, tag);
  return n;
}

function trimText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').replace(/[\0 ]+$/, '').trim();
}

function encodeText(vr: string, text: string, charset: string, tag: string): Uint8Array {
  let bytes: Uint8Array;
  if (/^[\x00-\x7f]*$/.test(text)) bytes = Buffer.from(text, 'latin1');
  else if (!CHARSET_VRS.has(vr)) throw new RewriteError('bad-value', `${vr} values are ASCII only (PS3.5 6.2): ${JSON.stringify(text)}`, tag);
  else {
    const cs = parseCharset(charset);
    const encoded = cs.unknown.length > 0 ? undefined : encodeInCharset(text, cs, vr);
    if (encoded === undefined) throw new RewriteError('charset', `${JSON.stringify(text)} cannot be written in Specific Character Set ${JSON.stringify(charsetName(cs))}`, tag);
    bytes = encoded;
  }
  // PS3.5 6.2: even length, UI padded with NUL, other text with a space.
  return bytes.length % 2 === 1 ? Buffer.concat([bytes, Buffer.from(vr === 'UI' ? '\0' : ' ', 'latin1')]) : bytes;
}

function formatDecimal(n: number, tag: string): string {
  if (!Number.isFinite(n)) throw new RewriteError('bad-value', `DS value must be finite, got ${n}`, tag);
  // PS3.5 6.2: DS is at most 16 bytes.
  let s = String(n);
  for (let p = 15; s.length > 16 && p > 0; p--) s = n.toPrecision(p).replace(/\.?0+(e|$)/, '$1');
  return s;
}

/** The value bytes of a set element (even length, syntax byte order). */
export function encodeValue(vr: string, value: ChangeValue | undefined, enc: Encoding, charset = '', tag = ''): Uint8Array {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  if (TEXT_VRS.has(vr)) {
    const parts = values.map((v) => {
      if (typeof v === 'string') return v;
      if (vr === 'IS' && Number.isInteger(v)) return String(v);
      if (vr === 'DS') return formatDecimal(v, tag);
      throw new RewriteError('bad-value', `${vr} takes strings, got ${v}`, tag);
    });
    return encodeText(vr, parts.join('\\'), charset, tag);
  }
  const size = BINARY_SIZE[vr];
  if (size === undefined) throw new RewriteError('unsupported-vr', `values of VR ${vr} cannot be set by the rewriter`, tag);
  const out = new Uint8Array(size * values.length);
  const dv = new DataView(out.buffer);
  const le = enc.littleEndian;
  values.forEach((raw, i) => {
    const o = i * size;
    if (vr === 'AT') {
      const t = typeof raw === 'number' ? raw : /^[0-9A-Fa-f]{8}$/.test(raw) ? parseInt(raw, 16) : NaN;
      if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RewriteError('bad-value', `AT takes tags such as '00181063', got ${raw}`, tag);
      dv.setUint16(o, t >>> 16, le);
      dv.setUint16(o + 2, t & 0xffff, le);
      return;
    }
    const n = typeof raw === 'number' ? raw : raw.trim() === '' ? NaN : Number(raw);
    const range: Readonly<Record<string, [number, number]>> = {
      US: [0, 0xffff], SS: [-0x8000, 0x7fff], UL: [0, 0xffffffff], SL: [-0x80000000, 0x7fffffff],
      SV: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], UV: [0, Number.MAX_SAFE_INTEGER],
    };
    const r = range[vr];
    if (Number.isNaN(n) || (r !== undefined && (!Number.isInteger(n) || n < r[0] || n > r[1]))) {
      throw new RewriteError('bad-value', `${raw} is not a valid ${vr} value`, tag);
    }
    if (vr === 'US') dv.setUint16(o, n, le);
    else if (vr === 'SS') dv.setInt16(o, n, le);
    else if (vr === 'UL') dv.setUint32(o, n, le);
    else if (vr === 'SL') dv.setInt32(o, n, le);
    else if (vr === 'FL') dv.setFloat32(o, n, le);
    else if (vr === 'FD') dv.setFloat64(o, n, le);
    else if (vr === 'SV') dv.setBigInt64(o, BigInt(n), le);
    else dv.setBigUint64(o, BigInt(n), le);
  });
  return out;
}

/** A complete element: header in the syntax's form, then the value. */
export function encodeElement(tag: number, vr: string, value: Uint8Array, enc: Encoding): Uint8Array {
  const long = enc.explicitVr && LONG_VRS.has(vr);
  if (enc.explicitVr && !long && value.length > 0xffff) {
    throw new RewriteError('value-too-long', `${value.length} bytes do not fit the 16-bit length of VR ${vr}`, tagName(tag));
  }
  const headerSize = long ? 12 : 8;
  const out = new Uint8Array(headerSize + value.length);
  const dv = new DataView(out.buffer);
  const le = enc.littleEndian;
  dv.setUint16(0, tag >>> 16, le);
  dv.setUint16(2, tag & 0xffff, le);
  if (!enc.explicitVr) dv.setUint32(4, value.length, le);
  else {
    out[4] = vr.charCodeAt(0);
    out[5] = vr.charCodeAt(1);
    if (long) dv.setUint32(8, value.length, le);
    else dv.setUint16(6, value.length, le);
  }
  out.set(value, headerSize);
  return out;
}

/**
 * The header with `changes` applied (later changes to a tag override earlier ones), in the same
 * transfer syntax. Every other element keeps its bytes; see the file comment for the rules.
 */
export function rewriteHeader(header: Uint8Array, transferSyntaxUid: string, changes: Change[], charsetPolicy: CharsetPolicy = 'convert-to-utf8'): Uint8Array {
  const enc = datasetEncoding(transferSyntaxUid);
  const final = new Map<number, Change>();
  for (const c of changes) {
    if (c.action !== 'set' && c.action !== 'remove') throw new RewriteError('bad-value', `unknown action ${JSON.stringify(c.action)}`, c.tag);
    final.set(parseTag(c.tag), c);
  }
  const spans = topLevelElements(header, transferSyntaxUid);
  if (final.size === 0) return header;
  const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const existing = new Map<number, ElementSpan>();
  for (const s of spans) if (!existing.has(s.tag)) existing.set(s.tag, s);
  const valueOf = (s: ElementSpan) => header.subarray(s.valueStart, s.end);

  // Text is encoded in the character set the dataset will declare.
  const scs = final.get(SPECIFIC_CHARACTER_SET);
  const scsSpan = existing.get(SPECIFIC_CHARACTER_SET);
  const charset =
    scs !== undefined
      ? scs.action === 'set' ? [scs.value ?? ''].flat().join('\\') : ''
      : scsSpan !== undefined ? trimText(valueOf(scsSpan)) : '';
  const pr = existing.get(PIXEL_REPRESENTATION);
  const pixelRepresentation = pr !== undefined && pr.length === 2 ? dv.getUint16(pr.valueStart, enc.littleEndian) : undefined;

  const encoded = new Map<number, Uint8Array>();
  try {
    for (const [tag, c] of final) {
      if (c.action !== 'set') continue;
      const span = existing.get(tag);
      const vr = c.vr ?? (span?.vr !== undefined && span.vr !== 'UN' ? span.vr : dictionaryVr(tag, { pixelRepresentation }));
      if (!ALL_VRS.has(vr)) throw new RewriteError('unknown-vr', `invalid VR ${JSON.stringify(vr)}`, c.tag);
      if (vr === 'UN' && c.vr === undefined) {
        throw new RewriteError('unknown-vr', `the VR of (${c.tag.slice(0, 4)},${c.tag.slice(4)}) is unknown (private or not in the dictionary): give one`, c.tag);
      }
      encoded.set(tag, encodeElement(tag, vr, encodeValue(vr, c.value, enc, charset, c.tag), enc));
    }
  } catch (err) {
    // A value the dataset's own character set cannot hold: convert the header to UTF-8 (then every
    // value fits), unless the rule refuses or the change sets (0008,0005) itself.
    if (!(err instanceof RewriteError) || err.code !== 'charset') throw err;
    if (scs !== undefined) throw err;
    if (charsetPolicy === 'refuse') throw new RewriteError('charset', `${err.message}; the rule says charset: refuse`, err.tag);
    return rewriteHeader(transcodeToUtf8(header, transferSyntaxUid, parseCharset(charset)), transferSyntaxUid, changes, 'refuse');
  }

  // Group length adjustments: new size minus old size of every changed element, per group.
  const delta = new Map<number, number>();
  const add = (tag: number, n: number) => delta.set(tag >>> 16, (delta.get(tag >>> 16) ?? 0) + n);
  for (const s of spans) if (final.has(s.tag)) add(s.tag, -(s.end - s.start));
  for (const [tag, bytes] of encoded) add(tag, bytes.length);

  const parts: Uint8Array[] = [];
  const additions = [...encoded.keys()].filter((t) => !existing.has(t)).sort((a, b) => a - b);
  let next = 0;
  const written = new Set<number>();
  for (const s of spans) {
    while (next < additions.length && additions[next] < s.tag) parts.push(encoded.get(additions[next++])!);
    const c = final.get(s.tag);
    if (c !== undefined) {
      // A tag present twice (malformed input) is written once.
      if (c.action === 'set' && !written.has(s.tag)) parts.push(encoded.get(s.tag)!);
      written.add(s.tag);
      continue;
    }
    const d = delta.get(s.tag >>> 16);
    if ((s.tag & 0xffff) === 0 && d !== undefined && d !== 0 && s.length === 4) {
      const copy = new Uint8Array(header.subarray(s.start, s.end)); // a copy: Buffer#slice would be a view
      const v = new DataView(copy.buffer);
      const at = s.valueStart - s.start;
      v.setUint32(at, (v.getUint32(at, enc.littleEndian) + d) >>> 0, enc.littleEndian);
      parts.push(copy);
      continue;
    }
    parts.push(header.subarray(s.start, s.end));
  }
  while (next < additions.length) parts.push(encoded.get(additions[next++])!);
  return Buffer.concat(parts);
}
