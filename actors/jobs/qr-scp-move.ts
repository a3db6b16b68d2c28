// C-MOVE through the router. The Move Destination must be a configured peer (by AE title; else A801
// naming it). What the router holds in full (the upstream archives have no more of it, or none
// answers) is sent from the spool on an association of our own to the destination, converted between
// uncompressed syntaxes as forwarding does; the rest is relayed: the C-MOVE goes to the upstream
// archives in turn with the same destination, and their pending counts and final status come back.
// Counts are what was actually delivered; a failure names its side (destination or upstream) in the log.
import type { PeerConfig } from '../../config/config.ts';
import type { SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal, Running } from '../../machines/dimse/qr-scp.events.ts';
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { UNIQUE_KEYS } from '../../protocol/qr-matching.ts';
import { Status, errorCommentOf } from '../../protocol/status.ts';
import { recordsFor } from '../ingest/index-query.ts';
import type { InstanceRecord } from '../ingest/spool.ts';
import { DestinationSender, Tally } from './qr-destination.ts';
import type { SubOperationSender } from './qr-destination.ts';
import { relayMove } from './qr-scp-relay.ts';
import type { Control } from './qr-scp-relay.ts';
import { retrieveThrough, startRetrieveThroughJob } from './qr-scp-through.ts';
import { isFinal, parseIdentifier, sourcesOf } from './qr-scp.ts';
import type { ParsedIdentifier, QrContext, QrRequest } from './qr-scp.ts';
import { cFind, withQrAssociation } from './qr-scu.ts';
import { jobInput, startQrJob } from './qr-job.ts';
import type { AssociationOwner, QrJob } from './qr-job.ts';
import { qrUpstreamMachine } from '../../machines/qr-upstream.machine.ts';

const COUNT_KEY: Record<QueryLevel, string | undefined> = {
  PATIENT: 'NumberOfPatientRelatedInstances',
  STUDY: 'NumberOfStudyRelatedInstances',
  SERIES: 'NumberOfSeriesRelatedInstances',
  IMAGE: undefined,
};

/** Start a C-MOVE to `destinationAe`; `progress` gets the counts as they change. */
export function runMove(ctx: QrContext, req: QrRequest, destinationAe: string, progress: (s: SubOperations) => void): Running<QrFinal> {
  return runRetrieval(req, async (parsed, control) => {
    const destination = [...ctx.peers.values()].find((p) => p.aeTitle === destinationAe.trim());
    if (!destination) {
      req.log.warn({ moveDestination: destinationAe }, 'C-MOVE refused: the destination is not a configured peer');
      return { status: Status.MOVE_DESTINATION_UNKNOWN, errorComment: errorCommentOf(`move destination '${destinationAe.trim()}' is not a configured peer`) };
    }
    const { held, upstream } = heldAndUpstream(ctx, parsed);
    const log = req.log.child({ moveDestination: destination.aeTitle, level: parsed.level });
    const through = ctx.config.move === 'retrieve-through';
    const sender = new DestinationSender(ctx.spool, destination, req.calledAeTitle, through ? log.child({ mode: 'retrieve-through' }) : log, (peer) => ctx.slots.turn(peer));
    if (upstream.length === 0) return fromSpoolAlone(req, sender, held, progress, control, log);
    // Asking the archives, the C-MOVE is a job in the actor tree from the start: every association it
    // opens (the count asked of an archive, the relayed or retrieve-through move, the destination's) is its child.
    const job = through ? startRetrieveThroughJob(ctx, req, parsed.level, parsed.keys, sender, upstream)
      : startQrJob(ctx, 'move', qrUpstreamMachine, jobInput('C-MOVE', parsed, req, upstream, destination.aeTitle));
    sender.ownedBy(job.owner);
    if (through) return spoolOrRetrieveThrough(ctx, req, parsed, sender, held, upstream, progress, control, job, 'C-MOVE');
    let final: QrFinal | undefined;
    try {
      if (held.length > 0 && await heldInFull(ctx, req, parsed.level, parsed.keys, held.length, upstream, job.owner)) {
        log.info({ instances: held.length }, 'C-MOVE from the spool');
        final = await sendFromSpool(req, sender, held, progress, control);
        return final;
      }
      final = await relayMove(ctx, req, destination.aeTitle, upstream, (s) => {
        job.send({ type: 'PROGRESS', suboperations: s });
        progress(s);
      }, control, job.owner);
      return final;
    } finally {
      job.end(final?.status ?? Status.UNABLE_TO_PROCESS);
    }
  });
}

/**
 * A C-MOVE or C-GET as its transaction machine runs it: the identifier is read first (a refusal is the
 * final status), then `retrieve` runs; cancel sets its flag and cancels the upstream C-MOVE under way.
 */
export function runRetrieval(req: QrRequest, retrieve: (parsed: ParsedIdentifier, control: Control) => Promise<QrFinal>): Running<QrFinal> {
  const control: Control = { cancelled: false, cancelUpstream: undefined };
  const done = (async (): Promise<QrFinal> => {
    const parsed = parseIdentifier(req);
    return isFinal(parsed) ? parsed : retrieve(parsed, control);
  })();
  return {
    done,
    cancel: () => {
      control.cancelled = true;
      control.cancelUpstream?.();
    },
  };
}

/** The upstream archives, and what the spool holds of the identifier (nothing when the spool is not a source). */
export function heldAndUpstream(ctx: QrContext, parsed: ParsedIdentifier): { held: InstanceRecord[]; upstream: PeerConfig[] } {
  const { local, upstream } = sourcesOf(ctx);
  return { held: local ? recordsFor(ctx.spool, parsed.level, parsed.keys) : [], upstream };
}

/** No upstream archive to ask: what the spool holds is all there is (nothing: Success with no sub-operations). */
export async function fromSpoolAlone(req: QrRequest, sender: SubOperationSender, held: InstanceRecord[], progress: (s: SubOperations) => void, control: Control, log = req.log): Promise<QrFinal> {
  if (held.length > 0) return sendFromSpool(req, sender, held, progress, control);
  log.info('retrieve: nothing held and no upstream archive: no sub-operations');
  return { status: Status.SUCCESS, suboperations: { completed: 0, failed: 0, warning: 0 } };
}

/**
 * With `move: retrieve-through` (and for every C-GET): from the spool when it holds it all, else
 * retrieved through the router. `job` (its retrieve-through job, started by the caller) ends here.
 */
export async function spoolOrRetrieveThrough(
  ctx: QrContext, req: QrRequest, parsed: ParsedIdentifier, sender: SubOperationSender, held: InstanceRecord[], upstream: PeerConfig[],
  progress: (s: SubOperations) => void, control: Control, job: QrJob, service: 'C-MOVE' | 'C-GET',
): Promise<QrFinal> {
  let handedOver = false;
  try {
    if (held.length > 0 && await heldInFull(ctx, req, parsed.level, parsed.keys, held.length, upstream, job.owner)) {
      req.log.info({ instances: held.length }, `${service} from the spool`);
      const final = await sendFromSpool(req, sender, held, progress, control);
      job.end(final.status);
      handedOver = true;
      return final;
    }
    handedOver = true; // retrieveThrough ends the job
    return await retrieveThrough(ctx, req, parsed.level, parsed.keys, sender, upstream, progress, control, job);
  } finally {
    if (!handedOver) job.end(Status.UNABLE_TO_PROCESS);
  }
}

/**
 * Does the router hold everything the identifier names? At IMAGE level: every listed instance. Above
 * it: the first upstream archive that answers counts no more instances than the spool holds (none
 * answering, or none knowing it: what the spool holds is all there is to send).
 */
export async function heldInFull(ctx: QrContext, req: QrRequest, level: QueryLevel, keys: Record<string, string>, held: number, upstream: PeerConfig[], owner?: AssociationOwner): Promise<boolean> {
  if (level === 'IMAGE') return held >= keys.SOPInstanceUID.split('\\').filter((u) => u.trim() !== '').length;
  const countKey = COUNT_KEY[level]!;
  const ownKey = UNIQUE_KEYS[level][0];
  const uniqueKeys: Record<string, string> = {};
  for (const k of ['PatientID', 'IssuerOfPatientID', 'StudyInstanceUID', 'SeriesInstanceUID']) if (keys[k]) uniqueKeys[k] = keys[k];
  for (const peer of upstream) {
    try {
      const r = await ctx.slots.with(peer.name, () => withQrAssociation(peer, req.model, req.log, (scu) => cFind(scu, level, { ...uniqueKeys, [ownKey]: keys[ownKey], [countKey]: '' }, req.model).done, 'find', undefined, owner));
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


/** C-STOREs from the spool through `sender` (to the destination, or back to a C-GET requester), counts after each. */
export async function sendFromSpool(req: QrRequest, sender: SubOperationSender, records: InstanceRecord[], progress: (s: SubOperations) => void, control: Control): Promise<QrFinal> {
  const log = req.log.child({ to: sender.name });
  sender.plan(records);
  try {
    await sender.open();
  } catch (err) {
    log.error({ side: 'destination', err: String(err) }, 'retrieve failed: cannot associate with the move destination');
    return { status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS, errorComment: errorCommentOf(`${sender.name}: ${(err as Error).message}`), suboperations: { completed: 0, failed: 0, warning: 0 } };
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
  log.info({ ...tally.counts, cancelled: control.cancelled }, 'retrieve from the spool done');
  return tally.final(control.cancelled, sender.name, req);
}

