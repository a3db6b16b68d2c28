// C-MOVE retrieve-through (issue 16): the router moves what it does not hold into itself from the
// upstream archives (C-MOVE with the router's own AE title as destination: the archive must know it),
// and each instance goes on to the requester's destination as soon as it is durable here, not after
// the whole study. The workstation's pending responses count what was delivered and what is still to
// come (the archive's remaining plus what waits here); the instances stay in the spool under normal
// retention. C-CANCEL stops both sides; a destination lost mid-way cancels the upstream move.
import type { PeerConfig } from '../../config/config.ts';
import type { SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal } from '../../machines/dimse/qr-scp.events.ts';
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { matchValue, UNIQUE_KEYS } from '../../protocol/qr-matching.ts';
import { Status, statusCategory } from '../../protocol/status.ts';
import { retrieveThroughMachine } from '../../machines/retrieve-through.machine.ts';
import type { RetrieveThroughInput } from '../../machines/retrieve-through.machine.ts';
import { startQrJob } from './qr-job.ts';
import type { QrJob } from './qr-job.ts';
import { Tally } from './qr-destination.ts';
import type { SubOperationSender } from './qr-destination.ts';
import type { QrContext, QrRequest, StoredInstance } from './qr-scp.ts';
import { relayMove } from './qr-scp-relay.ts';
import type { Control } from './qr-scp-relay.ts';

/** Does an instance stored just now belong to what the C-MOVE identifier names (its unique keys)? */
export function belongsTo(level: QueryLevel, keys: Readonly<Record<string, string>>, i: StoredInstance): boolean {
  const checks: [string, string, string][] = [
    ['PatientID', 'LO', i.patientId],
    ['StudyInstanceUID', 'UI', i.studyInstanceUid],
    ['SeriesInstanceUID', 'UI', i.seriesInstanceUid],
    ['SOPInstanceUID', 'UI', i.sopInstanceUid],
  ];
  const depth = { PATIENT: 1, STUDY: 2, SERIES: 3, IMAGE: 4 }[level];
  // A patient named with its issuer is that issuer's patient only: the same ID from another issuer
  // arriving meanwhile is someone else.
  if (keys.IssuerOfPatientID?.trim() && !matchValue('LO', keys.IssuerOfPatientID, i.issuerOfPatientId)) return false;
  return checks.slice(0, depth).every(([k, vr, v]) => !keys[k] || matchValue(vr, keys[k], v));
}

/** `sender`: where each instance goes once here (the move destination, or back to a C-GET requester). */
/** `job`: the retrieval's job, when the caller started it already (it ends here, with the retrieval). */
export async function retrieveThrough(ctx: QrContext, req: QrRequest, level: QueryLevel, keys: Record<string, string>, sender: SubOperationSender, upstream: PeerConfig[], progress: (s: SubOperations) => void, control: Control, started?: QrJob): Promise<QrFinal> {
  const log = req.log.child({ to: sender.name, mode: 'retrieve-through' });
  const job = started ?? startRetrieveThroughJob(ctx, req, level, keys, sender, upstream);
  const tally = new Tally(0);
  const queue: string[] = [];
  const seen = new Set<string>();
  let upstreamCounts: SubOperations = { remaining: undefined, completed: 0, failed: 0, warning: 0 };
  let upstreamDone = false;
  let wake: (() => void) | undefined;
  const report = () => {
    job.send({ type: 'PROGRESS', upstream: { ...upstreamCounts }, delivered: { ...tally.counts }, waiting: queue.length });
    progress({
      remaining: (upstreamCounts.remaining ?? 0) + queue.length,
      completed: tally.counts.completed,
      failed: tally.counts.failed + upstreamCounts.failed,
      warning: tally.counts.warning,
    });
  };
  const unsubscribe = ctx.stored.subscribe((i) => {
    if (seen.has(i.sopInstanceUid) || !belongsTo(level, keys, i)) return;
    seen.add(i.sopInstanceUid);
    queue.push(i.sopInstanceUid);
    wake?.();
  });
  // Deliveries run while the upstream move goes on: each instance leaves as soon as it is stored.
  const deliveries = (async () => {
    for (;;) {
      if (control.cancelled || tally.lost) return;
      const sop = queue.shift();
      if (sop === undefined) {
        if (upstreamDone) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      const record = ctx.spool.get(sop);
      const r = record ? await sender.send(record) : ({ result: 'failed' } as const);
      tally.add(sop, r);
      if (r.result === 'lost') {
        log.error({ side: 'destination', sopInstanceUid: sop, why: r.why }, 'C-MOVE: the destination failed mid-way; cancelling the upstream move');
        control.cancelUpstream?.();
        return;
      }
      if (tally.counts.completed === 1 && r.result === 'completed') log.info({ sopInstanceUid: sop }, 'retrieve-through: first instance delivered');
      report();
    }
  })();
  let up: QrFinal | undefined;
  try {
    try {
      up = await relayMove(ctx, req, req.calledAeTitle, upstream, (s) => {
        upstreamCounts = s;
        report();
      }, control, job.owner);
    } finally {
      upstreamDone = true;
      wake?.();
    }
    await deliveries;
  } finally {
    // Whatever happened, the subscription, the association and the job end with the retrieval.
    unsubscribe();
    await sender.close();
    job.end(up?.status ?? Status.UNABLE_TO_PROCESS);
  }
  const upstreamFailed = up.suboperations?.failed ?? 0;
  log.info({ upstream: up.suboperations, upstreamStatus: up.status, delivered: tally.counts, undelivered: queue.length }, 'retrieve-through done');
  if (tally.lost) tally.failRest(queue);
  const final = tally.final(control.cancelled, sender.name, req, upstreamFailed);
  // Nothing came and the archives failed: their status and reason, not a success with no sub-operations.
  if (seen.size === 0 && statusCategory(up.status) === 'failure') return up;
  return final;
}

/** The retrieve-through as a job in the actor tree while it runs, its associations its children (absent a host: nothing to show). */
export function startRetrieveThroughJob(ctx: QrContext, req: QrRequest, level: QueryLevel, keys: Record<string, string>, sender: SubOperationSender, upstream: PeerConfig[]): QrJob {
  const input: RetrieveThroughInput = {
    level, uid: keys[UNIQUE_KEYS[level][0]] ?? '', to: sender.name, sources: upstream.map((p) => p.name),
    requester: req.callingAeTitle, service: sender.ownedBy ? 'C-MOVE' : 'C-GET',
  };
  const job = startQrJob(ctx, 'retrieve-through', retrieveThroughMachine, input);
  // The deliveries' association to the move destination is the job's child too.
  sender.ownedBy?.(job.owner);
  return job;
}
