// Decodes the attributes before Pixel Data (the prefix DatasetWalker delimits) with dcmjs and
// pulls out the keys the router indexes and routes on. Only the prefix is ever decoded, so bulk
// data never enters memory here (DESIGN.md property 2).
//
// Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99): the caller inflates the dataset
// before walking and parsing it and passes the inflated prefix with that syntax's UID; it is then
// decoded as Explicit VR Little Endian (PS3.5 A.5: the deflated bytes are an Explicit VR LE dataset).
import { data } from 'dcmjs';
import type { DenaturalizedDataset } from 'dcmjs';
import { DatasetWalker } from './dataset-walker.ts';
import { part10Header } from './part10.ts';

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
   * instance's own value (dcmjs would report "ISO_IR 192").
   */
  dataset: Record<string, unknown>;
  /** Things decoded leniently, e.g. a character set dcmjs does not support. */
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

const DEFLATED_EXPLICIT_LE = '1.2.840.10008.1.2.1.99';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
// Placeholders: dcmjs reads only the transfer syntax from the meta group we wrap the prefix in.
const PLACEHOLDER_UID = '1.2.3.4';

function read(buffer: ArrayBuffer, ignoreErrors: boolean): DenaturalizedDataset {
  return data.DicomMessage.readFile(buffer, { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors }).dict;
}

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';

/**
 * Parses the dataset bytes before Pixel Data; a longer prefix or the whole dataset also works
 * (decoding stops at the top-level Pixel Data). The bytes are first walked with DatasetWalker:
 * dcmjs silently reads truncated values, so framing is checked here rather than trusted to it.
 */
export function parseHeader(bytes: Uint8Array, transferSyntaxUid: string): InstanceKeys {
  const syntax = transferSyntaxUid === DEFLATED_EXPLICIT_LE ? EXPLICIT_LE : transferSyntaxUid;
  // Same syntax mapping as dcmjs: every syntax but these two is Explicit VR LE on the wire.
  const walker = new DatasetWalker({ explicitVr: syntax !== IMPLICIT_LE, littleEndian: syntax !== EXPLICIT_BE, stopAtPixelData: true });
  walker.push(bytes);
  const walk = walker.end();
  if (!walk.complete) {
    throw new DatasetParseError(`malformed dataset (${transferSyntaxUid}): ${walk.problem}`, transferSyntaxUid, undefined);
  }
  const prefix = bytes.subarray(0, walk.headerLength);
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
  const file = new Uint8Array(header.length + prefix.length);
  file.set(header, 0);
  file.set(prefix, header.length);
  const warnings: string[] = [];
  let dict: DenaturalizedDataset;
  try {
    dict = read(file.buffer, false);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // dcmjs refuses multi-valued (ISO 2022 code extension) and unknown character sets unless
    // ignoreErrors; Canon and PixelMed peers send ISO 2022 IR 87 etc. Retry, decoding with the first.
    if (!/character set/i.test(message)) {
      throw new DatasetParseError(`cannot decode dataset (${transferSyntaxUid}): ${message}`, transferSyntaxUid, err);
    }
    try {
      dict = read(file.buffer, true);
    } catch (err2) {
      const m2 = err2 instanceof Error ? err2.message : String(err2);
      throw new DatasetParseError(`cannot decode dataset (${transferSyntaxUid}): ${m2}`, transferSyntaxUid, err2);
    }
    warnings.push(`${message}; strings decoded with the first character set only`);
  }
  delete dict['7FE00010'];
  let dataset: Record<string, unknown>;
  try {
    dataset = data.DicomMetaDictionary.naturalizeDataset(dict);
  } catch (err) {
    throw new DatasetParseError(`cannot naturalize dataset: ${err instanceof Error ? err.message : String(err)}`, transferSyntaxUid, err);
  }
  const charset = originalCharset(dict);
  if (charset !== undefined) dataset.SpecificCharacterSet = charset.length === 1 ? charset[0] : charset;

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
  if (charset !== undefined) keys.specificCharacterSet = charset.join('\\');
  return keys;
}

function originalCharset(dict: DenaturalizedDataset): string[] | undefined {
  const el = dict['00080005'];
  if (el === undefined) return undefined;
  // dcmjs rewrites Value to ["ISO_IR 192"] after decoding; _rawValue keeps what the instance said.
  const raw = Array.isArray(el._rawValue) ? el._rawValue : el.Value;
  if (!Array.isArray(raw)) return undefined;
  return raw.map((v) => String(v).trim());
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
