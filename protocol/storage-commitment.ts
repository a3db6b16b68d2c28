// Storage Commitment Push Model (PS3.4 Annex J): the N-ACTION-RQ's Action Information (J.3.2.1.1)
// and the N-EVENT-REPORT-RQ's Event Information (J.3.3.1.1), as datasets encoded/decoded with dcmjs
// in the presentation context's transfer syntax. Pure code: bytes in, checked plain objects out.
import { data, log } from 'dcmjs';
import type { DenaturalizedDataset } from 'dcmjs';
import { part10Header } from './part10.ts';
import { Status } from './status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from './uids.ts';

/** Action Type ID 1: Request Storage Commitment (PS3.4 J.3.2.1). */
export const REQUEST_STORAGE_COMMITMENT = 1;
/** Event Type IDs (PS3.4 J.3.3.1): 1 every instance committed, 2 some failed. */
export const EventType = { SUCCESSFUL: 1, FAILURES_EXIST: 2 } as const;

/** Failure Reason (0008,1197) values the router reports (PS3.4 J.3.3.1.1.2). */
export const FailureReason = {
  PROCESSING_FAILURE: 0x0110,
  NO_SUCH_OBJECT_INSTANCE: 0x0112,
  RESOURCE_LIMITATION: 0x0213,
  REFERENCED_SOP_CLASS_NOT_SUPPORTED: 0x0122,
  CLASS_INSTANCE_CONFLICT: 0x0119,
  DUPLICATE_TRANSACTION_UID: 0x0131,
} as const;

/** Failure Reason codes in words (PS3.4 J.3.3.1.1.2), for dead letters and logs. */
const FAILURE_REASON_WORDS: Record<number, string> = {
  0x0110: 'processing failure',
  0x0112: 'no such object instance',
  0x0213: 'resource limitation',
  0x0122: 'referenced SOP class not supported',
  0x0119: 'class / instance conflict',
  0x0131: 'duplicate transaction UID',
};

/** "0112 no such object instance" (the code as 4 hex digits, then its meaning, if standard). */
export function failureReasonText(code: number | undefined): string {
  if (code === undefined || !Number.isFinite(code)) return 'no failure reason given';
  const hex = code.toString(16).padStart(4, '0');
  return FAILURE_REASON_WORDS[code] ? `${hex} ${FAILURE_REASON_WORDS[code]}` : `${hex} (not a standard failure reason)`;
}

export type SopReference = { sopClassUid: string; sopInstanceUid: string };
export type FailedSop = SopReference & { failureReason: number };
export type CommitmentRequest = { transactionUid: string; referenced: SopReference[] };
export type CommitmentResult = { transactionUid: string; committed: SopReference[]; failed: FailedSop[] };

/** Why an N-ACTION's Action Information cannot be acted on: the N-ACTION-RSP status and its Error Comment. */
export class ActionInformationError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

// dcmjs reports what it tolerates (an unknown VR read as UN) through loglevel, to the console: the
// router writes only pino JSON to stdout, and malformed input is reported by our own checks. Its
// 'validation.dcmjs' logger keeps a level of its own.
log.setLevel('silent');
log.getLogger('validation.dcmjs').setLevel('silent');

const UID = /^(?=.{1,64}$)(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
const PLACEHOLDER_UID = '1.2.3';

/** Decode and check the Action Information of a Request Storage Commitment (PS3.4 J.3.2.1.1). */
export function decodeCommitmentRequest(bytes: Uint8Array, transferSyntaxUid: string): CommitmentRequest {
  let ds: Record<string, unknown>;
  try {
    ds = decode(bytes, transferSyntaxUid);
  } catch (err) {
    throw new ActionInformationError(Status.INVALID_ARGUMENT_VALUE, `Action Information cannot be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
  const transactionUid = single(ds.TransactionUID);
  if (transactionUid === undefined) throw new ActionInformationError(Status.MISSING_ATTRIBUTE, 'Transaction UID (0008,1195) is missing');
  if (typeof transactionUid !== 'string' || !UID.test(transactionUid)) throw new ActionInformationError(Status.INVALID_ARGUMENT_VALUE, 'Transaction UID (0008,1195) is not a valid UID');
  const items = ds.ReferencedSOPSequence;
  if (items === undefined) throw new ActionInformationError(Status.MISSING_ATTRIBUTE, 'Referenced SOP Sequence (0008,1199) is missing');
  const list = Array.isArray(items) ? items : [items];
  if (list.length === 0) throw new ActionInformationError(Status.MISSING_ATTRIBUTE_VALUE, 'Referenced SOP Sequence (0008,1199) is empty');
  const referenced = list.map((item, i): SopReference => {
    const it = (item ?? {}) as Record<string, unknown>;
    const sopClassUid = single(it.ReferencedSOPClassUID);
    const sopInstanceUid = single(it.ReferencedSOPInstanceUID);
    if (typeof sopClassUid !== 'string' || !UID.test(sopClassUid)) throw new ActionInformationError(Status.INVALID_ARGUMENT_VALUE, `Referenced SOP Sequence item ${i + 1}: Referenced SOP Class UID missing or invalid`);
    if (typeof sopInstanceUid !== 'string' || !UID.test(sopInstanceUid)) throw new ActionInformationError(Status.INVALID_ARGUMENT_VALUE, `Referenced SOP Sequence item ${i + 1}: Referenced SOP Instance UID missing or invalid`);
    return { sopClassUid, sopInstanceUid };
  });
  return { transactionUid, referenced };
}

/** Encode an Action Information dataset (the SCU side, and tests). */
export function encodeCommitmentRequest(request: CommitmentRequest, transferSyntaxUid: string): Uint8Array {
  return encode({
    TransactionUID: request.transactionUid,
    ReferencedSOPSequence: request.referenced.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid })),
  }, transferSyntaxUid);
}

/** The Event Type of a result: 1 when nothing failed, else 2 (PS3.4 J.3.3.1). */
export function eventTypeOf(result: CommitmentResult): number {
  return result.failed.length === 0 ? EventType.SUCCESSFUL : EventType.FAILURES_EXIST;
}

/** Encode the Event Information of a Storage Commitment Result (PS3.4 J.3.3.1.1): the Failed SOP Sequence only when something failed. */
export function encodeCommitmentResult(result: CommitmentResult, transferSyntaxUid: string): Uint8Array {
  const ds: Record<string, unknown> = { TransactionUID: result.transactionUid };
  if (result.committed.length > 0) {
    ds.ReferencedSOPSequence = result.committed.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid }));
  }
  if (result.failed.length > 0) {
    ds.FailedSOPSequence = result.failed.map((r) => ({ ReferencedSOPClassUID: r.sopClassUid, ReferencedSOPInstanceUID: r.sopInstanceUid, FailureReason: r.failureReason }));
  }
  return encode(ds, transferSyntaxUid);
}

/** Decode an Event Information dataset (tests, and the SCU side). */
export function decodeCommitmentResult(bytes: Uint8Array, transferSyntaxUid: string): CommitmentResult {
  const ds = decode(bytes, transferSyntaxUid);
  const items = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v : [v]) as Record<string, unknown>[];
  const ref = (it: Record<string, unknown>) => ({ sopClassUid: String(single(it.ReferencedSOPClassUID)), sopInstanceUid: String(single(it.ReferencedSOPInstanceUID)) });
  return {
    transactionUid: String(single(ds.TransactionUID)),
    committed: items(ds.ReferencedSOPSequence).map(ref),
    failed: items(ds.FailedSOPSequence).map((it) => ({ ...ref(it), failureReason: Number(single(it.FailureReason)) })),
  };
}

function single(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

/** The syntax dcmjs reads and writes: the two uncompressed little-endian ones (N-ACTION information is never compressed). */
function syntaxOf(transferSyntaxUid: string): string {
  return transferSyntaxUid === IMPLICIT_VR_LITTLE_ENDIAN ? IMPLICIT_VR_LITTLE_ENDIAN : EXPLICIT_VR_LITTLE_ENDIAN;
}

function decode(bytes: Uint8Array, transferSyntaxUid: string): Record<string, unknown> {
  // dcmjs reads whole Part-10 files: a File Meta Information header is put in front.
  const header = part10Header({
    sopClassUid: PLACEHOLDER_UID, sopInstanceUid: PLACEHOLDER_UID, transferSyntaxUid: syntaxOf(transferSyntaxUid),
    implementationClassUid: PLACEHOLDER_UID, implementationVersionName: '',
  });
  const file = new Uint8Array(header.length + bytes.length);
  file.set(header, 0);
  file.set(bytes, header.length);
  const dict = data.DicomMessage.readFile(file.buffer, { ignoreErrors: false }).dict;
  return data.DicomMetaDictionary.naturalizeDataset(dict) as Record<string, unknown>;
}

function encode(naturalized: Record<string, unknown>, transferSyntaxUid: string): Uint8Array {
  const syntax = syntaxOf(transferSyntaxUid);
  const meta: DenaturalizedDataset = data.DicomMetaDictionary.denaturalizeDataset({ TransferSyntaxUID: syntax, MediaStorageSOPClassUID: PLACEHOLDER_UID, MediaStorageSOPInstanceUID: PLACEHOLDER_UID });
  const dict = new data.DicomDict(meta);
  dict.dict = data.DicomMetaDictionary.denaturalizeDataset(naturalized);
  const file = new Uint8Array(dict.write());
  // Preamble (128) + 'DICM', then (0002,0000) UL whose value is the rest of the meta group's length.
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const groupLength = view.getUint32(132 + 8, true);
  return file.subarray(132 + 12 + groupLength);
}
