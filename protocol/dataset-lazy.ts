// A dataset whose attributes are decoded when they are read, not before (issue 13: "header keys come
// from the streaming walker, not a dcmjs parse of every instance"). Receiving an instance needs its
// index keys and the few attributes the rules in force look at; decoding all of them with dcmjs cost
// ~1 ms per instance, more than the rest of the receive path.
//
// The walker's spans say where each top-level element is; one element is decoded on first access by
// dcmjs's own element reader and naturalizer, so every value has exactly the shape a whole-dataset
// parse gives it (the rules engine sees no difference). Text in the Specific Character Set is decoded
// by protocol/charset.ts, as in the whole-dataset parse. Anything richer than a single simple element
// — a sequence, bulk data, enumerating or serializing the dataset — materializes the whole-dataset
// parse once and answers from it from then on.
import { data } from 'dcmjs';
import type { DenaturalizedDataset, ReadBufferStream } from 'dcmjs';
import { CHARSET_VRS, decodeText, parseCharset } from './charset.ts';
import type { Charset } from './charset.ts';
import type { ElementSpan } from './dataset-rewrite.ts';
import { dictionaryVr } from './ts-convert.ts';
import { EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from './uids.ts';

/** VRs decoded one element at a time; any other (SQ, OB, OW, UN, AT...) reads the whole dataset. */
const ELEMENT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT', 'US', 'SS', 'UL', 'SL', 'FL', 'FD']);

/** Text in the default repertoire whatever the Specific Character Set (PS3.5 6.1.2.3): decoded as it is. */
const ASCII_TEXT_VRS = new Set(['UI']);
const ASCII = parseCharset(undefined);

const HEX_TAG = /^[0-9A-Fa-f]{8}$/;

/** Keyword → tag, from the dictionary dcmjs names attributes with. */
const tagOfKeyword = new Map<string, number>();
/** The tag a key names: 8 hex digits (private or unknown elements), else a dictionary keyword. */
function tagOf(key: string): number | undefined {
  return HEX_TAG.test(key) ? Number.parseInt(key, 16) >>> 0 : keywordTag(key);
}

function keywordTag(keyword: string): number | undefined {
  let tag = tagOfKeyword.get(keyword);
  if (tag === undefined) {
    const entry = data.DicomMetaDictionary.nameMap[keyword];
    if (entry === undefined || !/^\([0-9A-F]{4},[0-9A-F]{4}\)$/i.test(entry.tag)) return undefined;
    tag = Number.parseInt(entry.tag.slice(1, 5) + entry.tag.slice(6, 10), 16) >>> 0;
    tagOfKeyword.set(keyword, tag);
  }
  return tag;
}

export type LazyDatasetSource = {
  /** The dataset bytes before Pixel Data, in an ArrayBuffer of their own. */
  bytes: ArrayBuffer;
  spans: ElementSpan[];
  /** How the bytes are encoded (the caller's reading of the transfer syntax). */
  encoding: { explicitVr: boolean; littleEndian: boolean };
  charset: Charset;
  /** Values given, not decoded (they win over the bytes). */
  fixed?: Record<string, unknown>;
  /** The whole-dataset parse: used for anything this file does not decode element by element. */
  whole(): Record<string, unknown>;
  /** What an element that cannot be decoded throws (the caller's error type). */
  failed(err: unknown): Error;
};

/** The naturalized dataset (keyword → value, as dcmjs names and shapes them), decoded on access. */
export function lazyDataset(source: LazyDatasetSource): Record<string, unknown> {
  const byTag = new Map<number, ElementSpan>();
  for (const s of source.spans) byTag.set(s.tag >>> 0, s);
  const enc = source.encoding;
  const syntax = !enc.explicitVr ? IMPLICIT_VR_LITTLE_ENDIAN : enc.littleEndian ? EXPLICIT_VR_LITTLE_ENDIAN : EXPLICIT_VR_BIG_ENDIAN;
  const decoded = new Map<string, unknown>(Object.entries(source.fixed ?? {}));
  // One reader for the dataset, moved to each element (dcmjs's stream is costly to construct).
  let stream: ReadBufferStream | undefined;
  let whole: Record<string, unknown> | undefined;
  const materialize = (): Record<string, unknown> => (whole ??= source.whole());

  /** The value under `key`, or `whole` when the element needs the whole-dataset parse. */
  const element = (key: string): { value: unknown } | 'whole' => {
    const tag = tagOf(key);
    if (tag === undefined) return 'whole';
    const span = byTag.get(tag);
    if (span === undefined) return { value: undefined };
    const vr = span.vr ?? dictionaryVr(tag);
    if (!ELEMENT_VRS.has(vr) || span.length === 0xffffffff) return 'whole';
    if (CHARSET_VRS.has(vr) || ASCII_TEXT_VRS.has(vr)) {
      // Text is split and trimmed here, as dcmjs does, without its element reader (most of the cost).
      const value = new Uint8Array(source.bytes, span.valueStart, span.end - span.valueStart);
      return { value: naturalValue(tag, { vr, Value: textValues(value, CHARSET_VRS.has(vr) ? source.charset : ASCII, vr) }) };
    }
    stream ??= new data.ReadBufferStream(source.bytes, enc.littleEndian, { noCopy: true });
    stream.offset = span.start;
    const read = data.DicomMessage._readTag(stream, syntax);
    return { value: naturalValue(tag, { vr: read.vr.type, Value: read.values as unknown[] }) };
  };

  /** Whether the element is there (an empty value counts), known from the spans alone. */
  const present = (key: string): boolean | undefined => {
    if (whole) return key in whole;
    const tag = tagOf(key);
    return tag === undefined ? undefined : byTag.has(tag);
  };

  const get = (key: string): unknown => {
    if (whole) return whole[key];
    if (decoded.has(key)) return decoded.get(key);
    let found: ReturnType<typeof element>;
    try {
      found = element(key);
    } catch (err) {
      throw source.failed(err);
    }
    if (found === 'whole') return materialize()[key];
    decoded.set(key, found.value);
    return found.value;
  };

  return new Proxy({} as Record<string, unknown>, {
    get: (_target, key) => (typeof key === 'string' ? get(key) : Reflect.get(materialize(), key)),
    has: (_target, key) => (typeof key === 'string' ? (present(key) ?? key in materialize()) : key in materialize()),
    set: (_target, key, value) => Reflect.set(materialize(), key, value),
    deleteProperty: (_target, key) => Reflect.deleteProperty(materialize(), key),
    ownKeys: () => Reflect.ownKeys(materialize()),
    getOwnPropertyDescriptor: (_target, key) => {
      const d = Reflect.getOwnPropertyDescriptor(materialize(), key);
      return d === undefined ? undefined : { ...d, configurable: true };
    },
  });
}

/**
 * One element's naturalized value, as DicomMetaDictionary.naturalizeDataset gives it: a single value
 * unwrapped, several as the array; a single object (a PN value) stays dcmjs's accessor-carrying array,
 * so that goes through dcmjs itself.
 */
function naturalValue(tag: number, entry: { vr: string; Value: unknown[] }): unknown {
  const values = entry.Value;
  if (values.length !== 1) return values;
  const only = values[0];
  if (only === null || typeof only !== 'object') return only;
  const natural = data.DicomMetaDictionary.naturalizeDataset({ [tag.toString(16).toUpperCase().padStart(8, '0')]: entry } as DenaturalizedDataset);
  const name = Object.keys(natural).find((k) => k !== '_vrMap');
  return name === undefined ? undefined : natural[name];
}

/**
 * The text values of one element, decoded in the dataset's character set: the denaturalized shape
 * (PN as {Alphabetic, Ideographic, Phonetic}), padding removed as PS3.5 6.2 says.
 */
export function textValues(value: Uint8Array, charset: Charset, vr: string): unknown[] {
  const text = decodeText(value, charset, vr);
  // Trailing spaces (and NUL, which some writers pad with) are padding; leading spaces are too, except in ST/LT/UT.
  const single = vr === 'ST' || vr === 'LT' || vr === 'UT';
  const values = (single ? [text] : text.split('\\')).map((v) => (single ? v.replace(/[\0 ]+$/, '') : v.replace(/^[\0 ]+|[\0 ]+$/g, '')));
  if (values.length === 1 && values[0] === '') return [];
  return vr === 'PN' ? values.map(personNameGroups) : values;
}

/** 'A^B=C^D' as dcmjs's denaturalized PN value: {Alphabetic, Ideographic, Phonetic}, absent groups left out. */
function personNameGroups(value: string): { Alphabetic: string; Ideographic?: string; Phonetic?: string } {
  const [Alphabetic, Ideographic, Phonetic] = value.split('=');
  return { Alphabetic, ...(Ideographic !== undefined ? { Ideographic } : {}), ...(Phonetic !== undefined ? { Phonetic } : {}) };
}
