// C-MOVE through the router. The Move Destination must be a configured peer (by AE title; else A801
// naming it). What the router holds in full (the upstream archives have no more of it, or none
// answers) is sent from the spool on an association of our own to the destination, converted between
// uncompressed syntaxes as forwarding does; the rest is relayed: the C-MOVE goes to the upstream
// archives in turn with the same destination, and their pending counts and final status come back.
// Counts are what was actually delivered; a failure names its side (destination or upstream) in the log.
import type { PeerConfig } from '../../config/config.ts';
import { transactionId } from '../../machines/association.machine.ts';
import type { DimseOutcome, SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal, Running } from '../../machines/dimse/qr-scp.events.ts';
import { encodeIdentifier } from '../../protocol/dataset-encode.ts';
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { CommandField, DATASET_PRESENT, Priority } from '../../protocol/dimse.ts';
import { formatStatus, Status, statusCategory } from '../../protocol/status.ts';
import { recordsFor } from '../ingest/index-query.ts';
import type { InstanceRecord } from '../ingest/spool.ts';
import type { ScuAssociation } from '../net/scu.ts';
import { DestinationSender } from './qr-destination.ts';
import type { SubOperationResult } from './qr-destination.ts';
import { isFinal, lo, parseIdentifier, sourcesOf } from './qr-scp.ts';
import type { QrContext, QrRequest } from './qr-scp.ts';
import { cFind, QR_SOP_CLASSES, withQrAssociation } from './qr-scu.ts';

const COUNT_KEY: Record<QueryLevel, string | undefined> = {
  PATIENT: 'NumberOfPatientRelatedInstances',
  STUDY: 'NumberOfStudyRelatedInstances',
  SERIES: 'NumberOfSeriesRelatedInstances',
  IMAGE: undefined,
};
const OWN_KEY: Record<QueryLevel, string> = { PATIENT: 'PatientID', STUDY: 'StudyInstanceUID', SERIES: 'SeriesInstanceUID', IMAGE: 'SOPInstanceUID' };

/** Start a C-MOVE to `destinationAe`; `progress` gets the counts as they change. */
export function runMove(ctx: QrContext, req: QrRequest, destinationAe: string, progress: (s: SubOperations) => void): Running<QrFinal> {
  const control = { cancelled: false, cancelUpstream: undefined as (() => void) | undefined };
  const done = (async (): Promise<QrFinal> => {
    const parsed = parseIdentifier(req);
    if (isFinal(parsed)) return parsed;
    const destination = [...ctx.peers.values()].find((p) => p.aeTitle === destinationAe.trim());
    if (!destination) {
      req.log.warn({ moveDestination: destinationAe }, 'C-MOVE refused: the destination is not a configured peer');
      return { status: Status.MOVE_DESTINATION_UNKNOWN, errorComment: lo(`move destination '${destinationAe.trim()}' is not a configured peer`) };
    }
    const { local, upstream } = sourcesOf(ctx);
    const held = local ? recordsFor(ctx.spool, parsed.level, parsed.keys) : [];
    const log = req.log.child({ moveDestination: destination.aeTitle, level: parsed.level });
    if (held.length > 0 && await heldInFull(ctx, req, parsed.level, parsed.keys, held.length, upstream)) {
      log.info({ instances: held.length }, 'C-MOVE from the spool');
      return sendFromSpool(ctx, req, destination, held, progress, control);
    }
    if (upstream.length === 0) {
      log.info('C-MOVE: nothing held and no upstream archive: no sub-operations');
      return { status: Status.SUCCESS, suboperations: { completed: 0, failed: 0, warning: 0 } };
    }
    if (ctx.config.move === 'retrieve-through') log.warn('retrieve-through is not implemented yet: relaying the C-MOVE instead');
    return relayMove(ctx, req, destination, upstream, progress, control);
  })();
  return {
    done,
    cancel: () => {
      control.cancelled = true;
      control.cancelUpstream?.();
    },
  };
}

/**
 * Does the router hold everything the identifier names? At IMAGE level: every listed instance. Above
 * it: the first upstream archive that answers counts no more instances than the spool holds (none
 * answering, or none knowing it: what the spool holds is all there is to send).
 */
async function heldInFull(ctx: QrContext, req: QrRequest, level: QueryLevel, keys: Record<string, string>, held: number, upstream: PeerConfig[]): Promise<boolean> {
  if (level === 'IMAGE') return held >= keys.SOPInstanceUID.split('\\').filter((u) => u.trim() !== '').length;
  const countKey = COUNT_KEY[level]!;
  const uniqueKeys: Record<string, string> = {};
  for (const k of ['PatientID', 'StudyInstanceUID', 'SeriesInstanceUID']) if (keys[k]) uniqueKeys[k] = keys[k];
  for (const peer of upstream) {
    try {
      const r = await ctx.slots.with(peer.name, () => withQrAssociation(peer, req.model, req.log, (scu) => cFind(scu, level, { ...uniqueKeys, [OWN_KEY[level]]: keys[OWN_KEY[level]], [countKey]: '' }, req.model).done, 'find'));
      if (r.result !== 'success') continue;
      if (r.matches.length === 0) return true;
      const counts = r.matches.map((m) => Number(Array.isArray(m[countKey]) ? m[countKey][0] : m[countKey]));
      if (counts.some((n) => !Number.isInteger(n))) return false; // it has it but will not say how much: relay
      const total = counts.reduce((a, b) => a + b, 0);
      req.log.info({ source: peer.name, upstreamInstances: total, heldInstances: held }, 'C-MOVE: what the archive holds against the spool');
      return total <= held;
    } catch (err) {
      req.log.warn({ source: peer.name, err: String(err) }, 'C-MOVE: could not ask the archive how much it holds');
    }
  }
  return true;
}

type Control = { cancelled: boolean; cancelUpstream: (() => void) | undefined };

/** C-STOREs from the spool to the destination, one association, counts reported after each. */
async function sendFromSpool(ctx: QrContext, req: QrRequest, destination: PeerConfig, records: InstanceRecord[], progress: (s: SubOperations) => void, control: Control): Promise<QrFinal> {
  const log = req.log.child({ moveDestination: destination.aeTitle });
  const sender = new DestinationSender(ctx.spool, destination, req.calledAeTitle, log);
  sender.plan(records);
  try {
    await sender.open();
  } catch (err) {
    log.error({ side: 'destination', err: String(err) }, 'C-MOVE failed: cannot associate with the move destination');
    return { status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS, errorComment: lo(`destination ${destination.aeTitle}: ${(err as Error).message}`), suboperations: { completed: 0, failed: 0, warning: 0 } };
  }
  const tally = new Tally(records.length);
  for (const record of records) {
    if (control.cancelled || tally.lost) break;
    const r = await sender.send(record);
    tally.add(record.sopInstanceUid, r);
    if (r.result === 'lost') log.error({ side: 'destination', sopInstanceUid: record.sopInstanceUid, why: r.why }, 'C-MOVE: the destination failed mid-way');
    else if (tally.counts.remaining! > 0) progress({ ...tally.counts });
  }
  await sender.close();
  // What was never tried after the destination was lost failed too (no sub-operation is left pending).
  if (tally.lost) tally.failRest(records.map((r) => r.sopInstanceUid));
  log.info({ ...tally.counts, cancelled: control.cancelled }, 'C-MOVE from the spool done');
  return tally.final(control.cancelled, destination, req);
}

/** Sub-operation counts and the failed UIDs, as a C-MOVE's final response reports them. */
export class Tally {
  readonly counts: SubOperations;
  readonly failedUids: string[] = [];
  lost: string | undefined;
  readonly #tried = new Set<string>();
  constructor(remaining: number) {
    this.counts = { remaining, completed: 0, failed: 0, warning: 0 };
  }
  add(sopInstanceUid: string, r: SubOperationResult): void {
    this.#tried.add(sopInstanceUid);
    if (this.counts.remaining !== undefined && this.counts.remaining > 0) this.counts.remaining--;
    if (r.result === 'completed') this.counts.completed++;
    else if (r.result === 'warning') this.counts.warning++;
    else {
      this.counts.failed++;
      this.failedUids.push(sopInstanceUid);
      if (r.result === 'lost') this.lost = r.why;
    }
  }
  /** Every listed instance not tried yet failed (the destination is gone). */
  failRest(uids: string[]): void {
    for (const uid of uids) {
      if (this.#tried.has(uid)) continue;
      this.failedUids.push(uid);
      this.counts.failed++;
    }
    this.counts.remaining = 0;
  }
  /** The final status (PS3.4 C.4.2.1.5): 0000, B000 with the failed UIDs, A702 when nothing could be sent, FE00. */
  final(cancelled: boolean, destination: PeerConfig, req: QrRequest, upstreamFailed = 0): QrFinal {
    const { completed, warning } = this.counts;
    const failed = this.counts.failed + upstreamFailed;
    const suboperations: SubOperations = { completed, failed, warning };
    const list = this.failedUids.length > 0 ? { dataset: encodeIdentifier({ FailedSOPInstanceUIDList: this.failedUids.join('\\') }, req.transferSyntax) } : {};
    if (cancelled) return { status: Status.CANCEL, suboperations: { ...suboperations, remaining: this.counts.remaining }, ...list };
    if (failed === 0 && warning === 0) return { status: Status.SUCCESS, suboperations };
    return {
      status: completed === 0 && warning === 0 && this.lost ? Status.OUT_OF_RESOURCES_SUB_OPERATIONS : Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES,
      ...(this.lost ? { errorComment: lo(`destination ${destination.aeTitle} failed: ${this.lost}`) } : {}),
      suboperations,
      ...list,
    };
  }
}

/**
 * The C-MOVE relayed to the upstream archives in turn (same identifier bytes, same destination):
 * the first that moves something, or ends without failure, answers; one failing (refused, down,
 * A801 for a destination it does not know) is logged and the next one is asked.
 */
async function relayMove(ctx: QrContext, req: QrRequest, destination: PeerConfig, upstream: PeerConfig[], progress: (s: SubOperations) => void, control: Control): Promise<QrFinal> {
  const failures: string[] = [];
  let empty: QrFinal | undefined;
  for (const peer of upstream) {
    if (control.cancelled) return { status: Status.CANCEL, suboperations: { completed: 0, failed: 0, warning: 0 } };
    const log = req.log.child({ source: peer.name, moveDestination: destination.aeTitle });
    try {
      const outcome = await ctx.slots.with(peer.name, () => withQrAssociation(peer, req.model, log, (scu) => streamMove(scu, req, destination.aeTitle, progress, control), 'move', [req.transferSyntax]));
      const counts = outcome.suboperations ?? { completed: 0, failed: 0, warning: 0 };
      const final: QrFinal = {
        status: outcome.status ?? Status.OUT_OF_RESOURCES_SUB_OPERATIONS,
        ...(outcome.errorComment ? { errorComment: outcome.errorComment } : {}),
        suboperations: { completed: counts.completed, failed: counts.failed, warning: counts.warning },
        ...(outcome.datasets?.[0]?.length ? { dataset: outcome.datasets[0] } : {}),
      };
      if (outcome.status === undefined) {
        log.error({ side: 'upstream', why: outcome.failure, ...final.suboperations }, 'C-MOVE relay: the archive stopped answering');
        if (counts.completed + counts.failed + counts.warning > 0) return { ...final, errorComment: lo(`upstream ${peer.name}: ${outcome.failure ?? 'no final response'}`) };
        failures.push(`${peer.name}: ${outcome.failure ?? 'no final response'}`);
        continue;
      }
      const category = statusCategory(outcome.status);
      log.info({ status: formatStatus(outcome.status, 'retrieve'), ...final.suboperations }, 'C-MOVE relayed');
      if (category === 'failure' && counts.completed + counts.warning === 0) {
        failures.push(`${peer.name}: ${formatStatus(outcome.status, 'retrieve')}${outcome.errorComment ? ` ${outcome.errorComment}` : ''}`);
        continue;
      }
      if (category === 'success' && counts.completed + counts.failed + counts.warning === 0) {
        empty = final; // this archive had none of it: ask the next
        continue;
      }
      return final;
    } catch (err) {
      log.warn({ side: 'upstream', err: String(err) }, 'C-MOVE relay: the archive failed; trying the next');
      failures.push(`${peer.name}: ${(err as Error).message}`);
    }
  }
  if (empty) return empty;
  return { status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS, errorComment: lo(`every archive failed: ${failures.join('; ')}`), suboperations: { completed: 0, failed: 0, warning: 0 } };
}

/** Runs the C-MOVE SCU transaction machine; its pending counts go to `progress` as they come. */
function streamMove(scu: ScuAssociation, req: QrRequest, destinationAe: string, progress: (s: SubOperations) => void, control: Control): Promise<DimseOutcome> {
  const sopClass = QR_SOP_CLASSES[req.model].move;
  const context = scu.contextFor(sopClass, req.transferSyntax);
  if (!context) throw new Error(`accepted no C-MOVE context in ${req.transferSyntax}`);
  const messageId = scu.newMessageId();
  const outcome = scu.runTransaction('cMoveScu', context.id, {
    CommandField: CommandField.C_MOVE_RQ, MessageID: messageId, AffectedSOPClassUID: sopClass, Priority: Priority.MEDIUM,
    CommandDataSetType: DATASET_PRESENT, MoveDestination: destinationAe,
  }, { kind: 'bytes', data: req.identifier });
  const child = scu.association.machine.getSnapshot().children[transactionId(messageId)];
  let last: SubOperations | undefined;
  // The C-MOVE SCU machine's context holds the counts of the last pending response (c-move-scu.machine.ts).
  const sub = child?.subscribe((snap) => {
    const s = (snap.context as { suboperations?: SubOperations } | undefined)?.suboperations;
    if (s && s !== last && snap.status === 'active') {
      last = s;
      progress({ ...s });
    }
  });
  control.cancelUpstream = () => child?.send({ type: 'CANCEL_REQUESTED' });
  return outcome.then((o) => {
    sub?.unsubscribe();
    control.cancelUpstream = undefined;
    if (o.timedOut) scu.abort();
    return o;
  });
}
