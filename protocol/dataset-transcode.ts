// Re-encoding a dataset prefix (the bytes before top-level Pixel Data) to UTF-8, as archives do when
// a value does not fit the instance's character set: every SH, LO, ST, LT, UC, UT and PN value, in
// sequences too, is decoded in the old Specific Character Set and written as UTF-8, (0008,0005)
// becomes ISO_IR 192, and the lengths that enclose a changed value (defined-length sequences and
// items, group lengths) follow. Everything else is copied byte for byte, in the same transfer syntax.
import { CHARSET_VRS, decodeText } from './charset.ts';
import type { Charset } from './charset.ts';
import { datasetEncoding, encodeElement, Reader, RewriteError } from './dataset-rewrite.ts';
import { dictionaryVr } from './ts-convert.ts';
import type { Encoding } from './ts-convert.ts';
import { ITEM, ITEM_DELIMITER, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from './data-elements.ts';

const SPECIFIC_CHARACTER_SET = 0x00080005;
const IMPLICIT_LE: Encoding = { explicitVr: false, littleEndian: true };
const MAX_DEPTH = 256;

/** The header with all its text in UTF-8 and (0008,0005) = ISO_IR 192 (added when absent). */
export function transcodeToUtf8(header: Uint8Array, transferSyntaxUid: string, from: Charset): Uint8Array {
  if (from.unknown.length > 0) {
    throw new RewriteError('bad-value', `cannot convert to UTF-8: Specific Character Set ${from.unknown.map((u) => JSON.stringify(u)).join(', ')} is unknown`, '00080005');
  }
  const enc = datasetEncoding(transferSyntaxUid);
  const t = new Transcoder(new Reader(header), from);
  const { parts } = t.elements(0, header.length, enc, 0);
  if (!parts.some((p) => p.tag === SPECIFIC_CHARACTER_SET)) {
    const scs = { tag: SPECIFIC_CHARACTER_SET, oldSize: 0, bytes: t.charsetElement(enc) };
    const at = parts.findIndex((p) => p.tag > SPECIFIC_CHARACTER_SET);
    parts.splice(at < 0 ? parts.length : at, 0, scs);
  }
  return Buffer.concat(withGroupLengths(parts, enc).map((p) => p.bytes));
}

type Part = { tag: number; oldSize: number; bytes: Uint8Array; groupLength?: boolean };

/** Group length elements (gggg,0000) of 4 bytes adjusted by their group's change in size. */
function withGroupLengths(parts: Part[], enc: Encoding): Part[] {
  const delta = new Map<number, number>();
  for (const p of parts) if ((p.tag & 0xffff) !== 0) delta.set(p.tag >>> 16, (delta.get(p.tag >>> 16) ?? 0) + p.bytes.length - p.oldSize);
  return parts.map((p) => {
    const d = delta.get(p.tag >>> 16);
    if ((p.tag & 0xffff) !== 0 || !d || p.bytes.length < 4) return p;
    const copy = new Uint8Array(p.bytes);
    const v = new DataView(copy.buffer);
    const at = copy.length - 4;
    v.setUint32(at, (v.getUint32(at, enc.littleEndian) + d) >>> 0, enc.littleEndian);
    return { ...p, bytes: copy };
  });
}

class Transcoder {
  private readonly r: Reader;
  private readonly from: Charset;
  constructor(r: Reader, from: Charset) {
    this.r = r;
    this.from = from;
  }

  charsetElement(enc: Encoding): Uint8Array {
    return encodeElement(SPECIFIC_CHARACTER_SET, 'CS', Buffer.from('ISO_IR 192'), enc);
  }

  /** Elements from `pos` to `end` (or, with end undefined, to an item delimiter, which is not consumed). */
  elements(pos: number, end: number | undefined, enc: Encoding, depth: number): { parts: Part[]; pos: number } {
    if (depth > MAX_DEPTH) throw new RewriteError('malformed', `sequences nested too deep at offset ${pos}`);
    const parts: Part[] = [];
    while (end === undefined ? this.r.tag(pos, enc) !== ITEM_DELIMITER : pos < end) {
      const start = pos;
      const el = this.r.element(pos, enc);
      if (el.tag >>> 16 === 0xfffe) throw new RewriteError('malformed', `unexpected item tag at offset ${pos}`);
      const valueStart = pos + el.headerSize;
      const vr = el.vr ?? dictionaryVr(el.tag);
      let bytes: Uint8Array;
      if (el.tag === SPECIFIC_CHARACTER_SET) {
        bytes = this.charsetElement(enc);
        pos = this.r.skipElement(pos, el, enc, depth);
      } else if (el.length === UNDEFINED_LENGTH && (vr === 'SQ' || vr === 'UN')) {
        // A sequence (or an undefined-length UN, which holds Implicit VR LE items: PS3.5 6.2.2).
        const inner = enc.explicitVr && el.vr === 'UN' ? IMPLICIT_LE : enc;
        const items = this.items(valueStart, undefined, inner, depth + 1);
        pos = items.pos;
        bytes = Buffer.concat([this.r.bytes.subarray(start, valueStart), ...items.parts, this.r.bytes.subarray(pos - 8, pos)]);
      } else if (vr === 'SQ') {
        this.r.need(valueStart, el.length, 'value');
        const items = this.items(valueStart, valueStart + el.length, enc, depth + 1);
        pos = items.pos;
        bytes = encodeElement(el.tag, 'SQ', Buffer.concat(items.parts), enc);
      } else if (CHARSET_VRS.has(vr)) {
        this.r.need(valueStart, el.length, 'value');
        pos = valueStart + el.length;
        const text = decodeText(this.r.bytes.subarray(valueStart, pos), this.from, vr).replace(/[\0 ]+$/, '');
        const utf8 = Buffer.from(text, 'utf8');
        // PS3.5 6.2: even length, padded with a space.
        bytes = encodeElement(el.tag, vr, utf8.length % 2 === 1 ? Buffer.concat([utf8, Buffer.from(' ')]) : utf8, enc);
      } else {
        pos = this.r.skipElement(pos, el, enc, depth);
        bytes = this.r.bytes.subarray(start, pos);
      }
      parts.push({ tag: el.tag, oldSize: pos - start, bytes });
    }
    return { parts, pos };
  }

  /** Items from `pos` to `end` (defined length), or to the sequence delimiter (consumed). */
  private items(pos: number, end: number | undefined, enc: Encoding, depth: number): { parts: Uint8Array[]; pos: number } {
    const out: Uint8Array[] = [];
    for (;;) {
      if (end !== undefined && pos >= end) return { parts: out, pos };
      const tag = this.r.tag(pos, enc);
      const length = this.r.u32(pos + 4, enc);
      if (tag === SEQUENCE_DELIMITER && end === undefined) return { parts: out, pos: pos + 8 };
      if (tag !== ITEM) throw new RewriteError('malformed', `expected an item at offset ${pos}`);
      const itemStart = pos + 8;
      if (length === UNDEFINED_LENGTH) {
        const inner = this.elements(itemStart, undefined, enc, depth);
        const body = withGroupLengths(inner.parts, enc).map((p) => p.bytes);
        out.push(this.r.bytes.subarray(pos, itemStart), ...body, this.r.bytes.subarray(inner.pos, inner.pos + 8));
        pos = inner.pos + 8;
      } else {
        this.r.need(itemStart, length, 'item');
        const inner = this.elements(itemStart, itemStart + length, enc, depth);
        const body = Buffer.concat(withGroupLengths(inner.parts, enc).map((p) => p.bytes));
        const head = new Uint8Array(this.r.bytes.subarray(pos, itemStart));
        new DataView(head.buffer).setUint32(4, body.length, enc.littleEndian);
        out.push(head, body);
        pos = itemStart + length;
      }
    }
  }
}
