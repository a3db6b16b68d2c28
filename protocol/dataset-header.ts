// Decodes the attributes before Pixel Data (the prefix DatasetWalker delimits) with dcmjs and
// pulls out the keys the router indexes and routes on. Only the prefix is ever decoded, so bulk
// data never enters memory here (DESIGN.md property 2).
//
// Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99): the caller inflates the dataset
// before walking and parsing it and passes the inflated prefix with that syntax's UID; it is then
// decoded as Explicit VR Little Endian (PS3.5 A.5: the deflated bytes are an Explicit VR LE dataset).
//
// Text in the Specific Character Set (SH, LO, ST, LT, UC, UT, PN) is decoded here, not by dcmjs:
// dcmjs knows one character set per dataset and no ISO 2022 code extensions (it would throw or log).
// The top-level text values are replaced by ours (protocol/charset.ts). Text inside sequences, which
// rules do not address, is dcmjs's reading: right for the single sets it knows (ISO_IR 100, 192,
// GB18030...); with code extensions or an unknown term, dcmjs gets no (0008,0005) and reads Latin-1.
import { data, log } from 'dcmjs';
import type { DenaturalizedDataset } from 'dcmjs';
import { CHARSET_VRS, parseCharset } from './charset.ts';
import { lazyDataset, textValues } from './dataset-lazy.ts';
import type { Charset } from './charset.ts';
import { topLevelElements } from './dataset-rewrite.ts';
import type { ElementSpan } from './dataset-rewrite.ts';
import { DatasetWalker } from './dataset-walker.ts';
import { part10Header } from './part10.ts';
import { inflatedSyntax } from './deflated.ts';
import { EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from './uids.ts';
import { dictionaryVr } from './ts-convert.ts';

// dcmjs logs through console (loglevel); the router's stdout carries pino JSON only. What dcmjs
// could complain about reaches callers here as a DatasetParseError.
log.setLevel('silent');

export type InstanceKeys = {
  sopClassUid?: string;
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  patientId?: string;
  /** PN as written: components joined with '=' (Alphabetic=Ideographic=Phonetic), trailing empty ones dropped. */
  patientName?: string;
  issuerOfPatientId?: string;
  modality?: string;
  studyDate?: string;
  studyDescription?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  accessionNumber?: string;
  bodyPartExamined?: string;
  /** As written in the instance, multiple values joined with '\'. */
  specificCharacterSet?: string;
  /**
   * dcmjs naturalized attributes: keyword → value, private or unknown elements under their
   * 8-hex-digit tag ("00091001"). Strings are already decoded; SpecificCharacterSet keeps the
   * instance's own value.
   */
  dataset: Record<string, unknown>;
  /** Things decoded leniently, e.g. a Specific Character Set term we do not know. */
  warnings: string[];
};

export class DatasetParseError extends Error {
  readonly transferSyntaxUid: string;
  constructor(message: string, transferSyntaxUid: string, cause: unknown) {
    super(message, { cause });
    this.name = 'DatasetParseError';
    this.transferSyntaxUid = transferSyntaxUid;
  }
}

// Placeholders: dcmjs reads only the transfer syntax from the meta group we wrap the prefix in.
const PLACEHOLDER_UID = '1.2.3.4';

/**
 * Parses the dataset bytes before Pixel Data; a longer prefix or the whole dataset also works
 * (decoding stops at the top-level Pixel Data). The bytes are first walked with DatasetWalker:
 * dcmjs silently reads truncated values, so framing is checked here rather than trusted to it.
 */
export function parseHeader(bytes: Uint8Array, transferSyntaxUid: string): InstanceKeys {
  const syntax = inflatedSyntax(transferSyntaxUid);
  if (!UID.test(syntax)) throw new DatasetParseError(`invalid transfer syntax UID ${JSON.stringify(transferSyntaxUid)}`, transferSyntaxUid, undefined);
  // Same syntax mapping as dcmjs: every syntax but these two is Explicit VR LE on the wire.
  const encoding = { explicitVr: syntax !== IMPLICIT_VR_LITTLE_ENDIAN, littleEndian: syntax !== EXPLICIT_VR_BIG_ENDIAN };
  const walker = new DatasetWalker({ ...encoding, stopAtPixelData: true });
  walker.push(bytes);
  const walk = walker.end();
  if (!walk.complete) {
    throw new DatasetParseError(`malformed dataset (${transferSyntaxUid}): ${walk.problem}`, transferSyntaxUid, undefined);
  }
  const prefix = bytes.subarray(0, walk.headerLength);
  let spans: ElementSpan[];
  try {
    spans = topLevelElements(prefix, syntax);
  } catch (err) {
    throw new DatasetParseError(`malformed dataset (${transferSyntaxUid}): ${err instanceof Error ? err.message : String(err)}`, transferSyntaxUid, err);
  }
  const scs = spans.find((s) => s.tag === SPECIFIC_CHARACTER_SET);
  const charsetValues = scs === undefined ? undefined : latin1(prefix.subarray(scs.valueStart, scs.end)).replace(/[\0 ]+$/, '').split('\\').map((v) => v.trim());
  const charset = parseCharset(charsetValues);
  const warnings: string[] = [];
  if (charset.unknown.length > 0) {
    warnings.push(`unknown Specific Character Set ${charset.unknown.map((u) => JSON.stringify(u)).join(', ')}: text decoded with ${charset.terms.map((t) => t.term).join(', ')}`);
  }
  // The prefix in an ArrayBuffer of its own: values are read from it later, when asked for.
  const own = new Uint8Array(prefix.length);
  own.set(prefix);
  const dataset = lazyDataset({
    bytes: own.buffer,
    spans,
    encoding,
    charset,
    // The instance's own value, not dcmjs's reading (which would say ISO_IR 192 after decoding).
    ...(charsetValues !== undefined ? { fixed: { SpecificCharacterSet: charsetValues.length === 1 ? charsetValues[0] : charsetValues } } : {}),
    whole: () => wholeDataset(own, syntax, transferSyntaxUid, spans, charset, charsetValues, scs),
    failed: (err) => new DatasetParseError(`cannot decode dataset (${transferSyntaxUid}): ${err instanceof Error ? err.message : String(err)}`, transferSyntaxUid, err),
  });

  const keys: InstanceKeys = { dataset, warnings };
  const set = <K extends keyof InstanceKeys>(key: K, value: InstanceKeys[K] | undefined): void => {
    if (value !== undefined) keys[key] = value;
  };
  set('sopClassUid', text(dataset.SOPClassUID));
  set('sopInstanceUid', text(dataset.SOPInstanceUID));
  set('studyInstanceUid', text(dataset.StudyInstanceUID));
  set('seriesInstanceUid', text(dataset.SeriesInstanceUID));
  set('patientId', text(dataset.PatientID));
  set('patientName', personName(dataset.PatientName));
  set('issuerOfPatientId', text(dataset.IssuerOfPatientID));
  set('modality', text(dataset.Modality));
  set('studyDate', text(dataset.StudyDate));
  set('studyDescription', text(dataset.StudyDescription));
  set('seriesNumber', integer(dataset.SeriesNumber));
  set('instanceNumber', integer(dataset.InstanceNumber));
  set('accessionNumber', text(dataset.AccessionNumber));
  set('bodyPartExamined', text(dataset.BodyPartExamined));
  if (charsetValues !== undefined) keys.specificCharacterSet = charsetValues.join('\\');
  return keys;
}

/**
 * Every attribute decoded at once (dcmjs readFile + naturalize), for what the element-by-element
 * reading of protocol/dataset-lazy.ts does not cover: sequences, bulk data, enumeration.
 */
function wholeDataset(
  prefix: Uint8Array, syntax: string, transferSyntaxUid: string, spans: ElementSpan[], charset: Charset,
  charsetValues: string[] | undefined, scs: ElementSpan | undefined,
): Record<string, unknown> {
  let header: Buffer;
  try {
    header = part10Header({
      sopClassUid: PLACEHOLDER_UID,
      sopInstanceUid: PLACEHOLDER_UID,
      transferSyntaxUid: syntax,
      implementationClassUid: PLACEHOLDER_UID,
      implementationVersionName: '',
    });
  } catch (err) {
    throw new DatasetParseError(`invalid transfer syntax UID ${JSON.stringify(transferSyntaxUid)}`, transferSyntaxUid, err);
  }
  // dcmjs wants a whole Part-10 file in an ArrayBuffer of its own.
  const dcmjsKnows = charsetValues?.length === 1 && DCMJS_DECODES.has(charsetValues[0]);
  const withoutScs = scs === undefined || dcmjsKnows ? [prefix] : [prefix.subarray(0, scs.start), prefix.subarray(scs.end)];
  const file = new Uint8Array(header.length + withoutScs.reduce((n, p) => n + p.length, 0));
  file.set(header, 0);
  let at = header.length;
  for (const p of withoutScs) {
    file.set(p, at);
    at += p.length;
  }
  let dict: DenaturalizedDataset;
  try {
    dict = data.DicomMessage.readFile(file.buffer, { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors: false }).dict;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new DatasetParseError(`cannot decode dataset (${transferSyntaxUid}): ${message}`, transferSyntaxUid, err);
  }
  delete dict['7FE00010'];
  decodeTopLevelText(dict, prefix, spans, charset);
  let dataset: Record<string, unknown>;
  try {
    dataset = data.DicomMetaDictionary.naturalizeDataset(dict);
  } catch (err) {
    throw new DatasetParseError(`cannot naturalize dataset: ${err instanceof Error ? err.message : String(err)}`, transferSyntaxUid, err);
  }
  if (charsetValues !== undefined) dataset.SpecificCharacterSet = charsetValues.length === 1 ? charsetValues[0] : charsetValues;
  return dataset;
}

const SPECIFIC_CHARACTER_SET = 0x00080005;
/** PS3.5 9.1: digits and dots, each component without leading zeros, at most 64 characters. */
const UID = /^(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
// Single terms dcmjs 0.51 maps to the same decoder as we do (its encodingMapping; not ISO_IR 203).
const DCMJS_DECODES = new Set(['ISO_IR 6', 'ISO_IR 13', 'ISO_IR 100', 'ISO_IR 101', 'ISO_IR 109', 'ISO_IR 110', 'ISO_IR 126', 'ISO_IR 127', 'ISO_IR 138', 'ISO_IR 144', 'ISO_IR 148', 'ISO_IR 166', 'ISO_IR 192', 'GB18030', 'GBK']);

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Replaces dcmjs's reading of each top-level text element of a character-set VR by ours. */
function decodeTopLevelText(dict: DenaturalizedDataset, prefix: Uint8Array, spans: ElementSpan[], charset: Charset): void {
  for (const s of spans) {
    const vr = s.vr ?? dictionaryVr(s.tag);
    if (!CHARSET_VRS.has(vr) || s.length === 0xffffffff) continue;
    const el = dict[s.tag.toString(16).toUpperCase().padStart(8, '0')];
    if (el !== undefined) el.Value = textValues(prefix.subarray(s.valueStart, s.end), charset, vr);
  }
}

function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}

function text(value: unknown): string | undefined {
  const v = first(value);
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/[\0 ]+$/, '').replace(/^ +/, '');
  return s === '' ? undefined : s;
}

function integer(value: unknown): number | undefined {
  const v = first(value);
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number.parseInt(v, 10);
  return undefined;
}

function personName(value: unknown): string | undefined {
  const v = first(value);
  if (typeof v === 'string') return text(v);
  if (typeof v !== 'object' || v === null) return undefined;
  const pn = v as { Alphabetic?: unknown; Ideographic?: unknown; Phonetic?: unknown };
  // Padding is stripped per component: some writers pad PN with NUL instead of space.
  const parts = [pn.Alphabetic, pn.Ideographic, pn.Phonetic].map((p) => (typeof p === 'string' ? (text(p) ?? '') : ''));
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.length === 0 ? undefined : parts.join('=');
}
