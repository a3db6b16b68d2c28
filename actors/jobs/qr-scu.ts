// Query/Retrieve SCU: C-FIND and C-MOVE over an association opened with ScuAssociation, each a
// transaction machine (machines/dimse/c-find-scu.machine.ts, c-move-scu.machine.ts). Here the
// outcomes get their meaning (conformance 4.2.5.3.1.3-4): success, partial (B000), failed with a
// reason, cancelled; a DIMSE timeout aborts the association.
import type { Logger } from 'pino';
import type { PeerConfig } from '../../config/config.ts';
import type { DimseOutcome, SubOperations } from '../../machines/dimse/dimse.events.ts';
import { transactionId } from '../../machines/association.machine.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { findIdentifier, encodeIdentifier } from '../../protocol/dataset-encode.ts';
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { CommandField, DATASET_PRESENT, Priority } from '../../protocol/dimse.ts';
import { formatStatus, statusCategory } from '../../protocol/status.ts';
import type { StatusService } from '../../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, STUDY_ROOT_FIND, STUDY_ROOT_MOVE } from '../../protocol/uids.ts';
import { ScuAssociation } from '../net/scu.ts';
import { peerConnection } from '../net/peer-connection.ts';
import type { AssociationOwner } from './qr-job.ts';

export type QrModel = 'study-root' | 'patient-root';

export const QR_SOP_CLASSES: Record<QrModel, { find: string; move: string }> = {
  'study-root': { find: STUDY_ROOT_FIND, move: STUDY_ROOT_MOVE },
  'patient-root': { find: PATIENT_ROOT_FIND, move: PATIENT_ROOT_MOVE },
};

/** Proposed as the conformance statement's Table 4.2-42 does: Implicit and Explicit VR LE. */
export function qrContexts(model: QrModel, what: 'find' | 'move' | 'both' = 'both', transferSyntaxes = [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]) {
  const uids = QR_SOP_CLASSES[model];
  const classes = what === 'both' ? [uids.find, uids.move] : [uids[what]];
  return classes.map((abstractSyntax) => ({ abstractSyntax, transferSyntaxes }));
}

export type FindResult = {
  result: 'success' | 'failed' | 'cancelled';
  status?: number;
  /** Why it failed: the status and its Error Comment, the timeout, or the association's end. */
  reason?: string;
  /** Each match, dcmjs-naturalized (keyword → value). */
  matches: Record<string, unknown>[];
  timedOut?: boolean;
};

export type MoveResult = {
  result: 'success' | 'partial' | 'failed' | 'cancelled';
  status?: number;
  reason?: string;
  suboperations: SubOperations;
  /** From the final response's identifier (0008,0058), when the SCP lists them. */
  failedSopInstanceUids: string[];
  timedOut?: boolean;
};

export type Running<T> = { done: Promise<T>; /** C-CANCEL the transaction (PS3.7 9.3.2.3). */ cancel(): void };

function reasonOf(outcome: DimseOutcome, service: StatusService): string | undefined {
  if (outcome.status === undefined) return outcome.failure ?? 'no final response';
  if (statusCategory(outcome.status) !== 'failure') return undefined;
  return `${formatStatus(outcome.status, service)}${outcome.errorComment ? `: ${outcome.errorComment}` : ''}`;
}

function start(scu: ScuAssociation, service: 'cFindScu' | 'cMoveScu', sopClass: string, build: (messageId: number, ts: string) => { command: Parameters<ScuAssociation['runTransaction']>[2]; identifier: Uint8Array }) {
  const context = scu.contextFor(sopClass);
  if (!context) throw new Error(`the peer accepted no presentation context for ${sopClass}`);
  const messageId = scu.newMessageId();
  const { command, identifier } = build(messageId, context.transferSyntax);
  const done = scu.runTransaction(service, context.id, command, { kind: 'bytes', data: identifier }).then((outcome) => {
    // Conformance 4.2.5.3.1.3, Table 4.2-44: on a timeout the association is aborted.
    if (outcome.timedOut) scu.abort();
    return outcome;
  });
  const cancel = () => scu.association.machine.getSnapshot().children[transactionId(messageId)]?.send({ type: 'CANCEL_REQUESTED' });
  return { done, cancel, transferSyntax: context.transferSyntax };
}

/** C-FIND at `level` with `keys` (keyword → matching value, '' for a return key). */
export function cFind(scu: ScuAssociation, level: QueryLevel, keys: Record<string, string>, model: QrModel = 'study-root'): Running<FindResult> {
  const run = start(scu, 'cFindScu', QR_SOP_CLASSES[model].find, (messageId, ts) => ({
    command: { CommandField: CommandField.C_FIND_RQ, MessageID: messageId, AffectedSOPClassUID: QR_SOP_CLASSES[model].find, Priority: Priority.MEDIUM, CommandDataSetType: DATASET_PRESENT },
    identifier: findIdentifier(level, keys, ts),
  }));
  const done = run.done.then((outcome): FindResult => {
    const matches = (outcome.datasets ?? []).map((d) => parseHeader(d, run.transferSyntax).dataset);
    const status = outcome.status;
    const result = status === undefined || statusCategory(status) === 'failure' ? 'failed' : statusCategory(status) === 'cancel' ? 'cancelled' : 'success';
    const reason = reasonOf(outcome, 'find');
    return { result, ...(status !== undefined ? { status } : {}), ...(reason ? { reason } : {}), matches, ...(outcome.timedOut ? { timedOut: true } : {}) };
  });
  return { done, cancel: run.cancel };
}

/** C-MOVE of what `keys` identify at `level` to the AE `destination`. */
export function cMove(scu: ScuAssociation, destination: string, level: QueryLevel, keys: Record<string, string>, model: QrModel = 'study-root'): Running<MoveResult> {
  const run = start(scu, 'cMoveScu', QR_SOP_CLASSES[model].move, (messageId, ts) => ({
    command: {
      CommandField: CommandField.C_MOVE_RQ, MessageID: messageId, AffectedSOPClassUID: QR_SOP_CLASSES[model].move,
      Priority: Priority.MEDIUM, CommandDataSetType: DATASET_PRESENT, MoveDestination: destination,
    },
    identifier: encodeIdentifier({ ...keys, QueryRetrieveLevel: level }, ts),
  }));
  const done = run.done.then((outcome): MoveResult => {
    const status = outcome.status;
    const suboperations = outcome.suboperations ?? { completed: 0, failed: 0, warning: 0 };
    const category = status === undefined ? 'failure' : statusCategory(status);
    // B000: sub-operations complete, one or more failures or warnings (PS3.4 C.4.2.1.5).
    const result = category === 'failure' ? 'failed' : category === 'cancel' ? 'cancelled' : category === 'warning' || suboperations.failed > 0 ? 'partial' : 'success';
    let failedSopInstanceUids: string[] = [];
    const identifier = outcome.datasets?.[0];
    if (identifier && identifier.length > 0) {
      try {
        const list = parseHeader(identifier, run.transferSyntax).dataset.FailedSOPInstanceUIDList;
        failedSopInstanceUids = (Array.isArray(list) ? list : list === undefined ? [] : [list]).map(String).filter((s) => s !== '');
      } catch {
        // An unreadable identifier loses only the list of failed UIDs; the counts say what happened.
      }
    }
    let reason = reasonOf(outcome, 'retrieve');
    if (!reason && result === 'partial') reason = `${suboperations.failed} sub-operation(s) failed, ${suboperations.warning} with warnings${status !== undefined ? ` (${formatStatus(status, 'retrieve')})` : ''}`;
    return { result, ...(status !== undefined ? { status } : {}), ...(reason ? { reason } : {}), suboperations, failedSopInstanceUids, ...(outcome.timedOut ? { timedOut: true } : {}) };
  });
  return { done, cancel: run.cancel };
}

/**
 * Open an association to a configured peer for Q/R, run `fn`, release (or abort if it threw).
 * `transferSyntaxes`: what to propose (the Q/R SCP relays identifiers in its requester's syntax).
 */
export async function withQrAssociation<T>(peer: PeerConfig, model: QrModel, logger: Logger, fn: (scu: ScuAssociation) => Promise<T>, what: 'find' | 'move' | 'both' = 'both', transferSyntaxes?: string[], owner?: AssociationOwner): Promise<T> {
  // In the actor tree under the request's job when there is one (actors/jobs/qr-job.ts); its machine
  // leaves the tree once the transport is closed.
  const association = owner?.open(peer.name);
  let scu: ScuAssociation;
  try {
    scu = await ScuAssociation.open({
      ...peerConnection(peer),
      contexts: qrContexts(model, what, transferSyntaxes),
      ...(association ? { association } : {}),
      logger,
    });
  } catch (err) {
    if (association) owner?.close(association);
    throw err;
  }
  if (association) void scu.closed.then(() => owner?.close(association));
  try {
    const value = await fn(scu);
    await scu.release().catch(() => scu.abort());
    return value;
  } catch (err) {
    scu.abort();
    throw err;
  }
}

export type InstanceCount = { count: number; how: string };

const countIn = (v: unknown): number | undefined => {
  const first = Array.isArray(v) ? v[0] : v;
  const n = typeof first === 'number' ? first : typeof first === 'string' && first.trim() !== '' ? Number(first) : NaN;
  return Number.isInteger(n) && n >= 0 ? n : undefined;
};
const uidIn = (v: unknown): string | undefined => {
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' && first.trim() !== '' ? first.trim() : undefined;
};

/**
 * How many instances of a study the SCP holds (Study Root C-FIND): NumberOfStudyRelatedInstances
 * when it returns it (PS3.4 C.6.1.1.3, optional); otherwise series by series
 * (NumberOfSeriesRelatedInstances, or the SOP Instance UIDs at IMAGE level: a hierarchical SCP such
 * as DCMTK dcmqrscp wants the series named). No match: 0. A failed C-FIND throws with its reason.
 */
export async function countStudyInstances(scu: ScuAssociation, studyInstanceUid: string): Promise<InstanceCount> {
  const ask = async (level: QueryLevel, keys: Record<string, string>) => {
    const r = await cFind(scu, level, keys).done;
    if (r.result !== 'success') throw new Error(`C-FIND at ${level} level failed: ${r.reason ?? r.result}`);
    return r.matches;
  };
  const studies = await ask('STUDY', { StudyInstanceUID: studyInstanceUid, NumberOfStudyRelatedInstances: '' });
  if (studies.length === 0) return { count: 0, how: 'no such study' };
  const direct = countIn(studies[0].NumberOfStudyRelatedInstances);
  if (direct !== undefined) return { count: direct, how: 'NumberOfStudyRelatedInstances' };
  const series = await ask('SERIES', { StudyInstanceUID: studyInstanceUid, SeriesInstanceUID: '', NumberOfSeriesRelatedInstances: '' });
  let count = 0;
  const seen = new Set<string>();
  for (const s of series) {
    const uid = uidIn(s.SeriesInstanceUID);
    if (!uid || seen.has(uid)) continue;
    seen.add(uid);
    const n = countIn(s.NumberOfSeriesRelatedInstances);
    if (n !== undefined) {
      count += n;
      continue;
    }
    const images = await ask('IMAGE', { StudyInstanceUID: studyInstanceUid, SeriesInstanceUID: uid, SOPInstanceUID: '' });
    count += new Set(images.map((i) => uidIn(i.SOPInstanceUID)).filter((u) => u !== undefined)).size;
  }
  return { count, how: `counted in ${seen.size} series` };
}
