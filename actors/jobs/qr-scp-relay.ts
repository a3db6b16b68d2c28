// A C-MOVE relayed to the upstream archives in turn, with a given Move Destination (the requester's
// for `relay`; the router itself for retrieve-through): their pending counts come back as they arrive,
// and the final status of the archive that answered. One archive failing is logged and the next asked.
import type { PeerConfig } from '../../config/config.ts';
import { transactionId } from '../../machines/association.machine.ts';
import type { DimseOutcome, SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal } from '../../machines/dimse/qr-scp.events.ts';
import { CommandField, DATASET_PRESENT, Priority } from '../../protocol/dimse.ts';
import { formatStatus, Status, statusCategory, errorCommentOf } from '../../protocol/status.ts';
import type { ScuAssociation } from '../net/scu.ts';
import type { QrContext, QrRequest } from './qr-scp.ts';
import { QR_SOP_CLASSES, withQrAssociation } from './qr-scu.ts';
import type { AssociationOwner } from './qr-job.ts';

/** A retrieval's cancel flag, and how to cancel the upstream C-MOVE under way. */
export type Control = { cancelled: boolean; cancelUpstream: (() => void) | undefined };

/**
 * The C-MOVE relayed to the upstream archives in turn (same identifier bytes, same destination):
 * the first that moves something, or ends without failure, answers; one failing (refused, down,
 * A801 for a destination it does not know) is logged and the next one is asked.
 */
export async function relayMove(ctx: QrContext, req: QrRequest, destinationAe: string, upstream: PeerConfig[], progress: (s: SubOperations) => void, control: Control, owner?: AssociationOwner): Promise<QrFinal> {
  const failures: string[] = [];
  let empty: QrFinal | undefined;
  for (const peer of upstream) {
    if (control.cancelled) return { status: Status.CANCEL, suboperations: { completed: 0, failed: 0, warning: 0 } };
    const log = req.log.child({ source: peer.name, moveDestination: destinationAe });
    try {
      const outcome = await ctx.slots.with(peer.name, () => withQrAssociation(peer, req.model, log, (scu) => streamMove(scu, req, destinationAe, progress, control), 'move', [req.transferSyntax], owner));
      const counts = outcome.suboperations ?? { completed: 0, failed: 0, warning: 0 };
      const final: QrFinal = {
        status: outcome.status ?? Status.OUT_OF_RESOURCES_SUB_OPERATIONS,
        ...(outcome.errorComment ? { errorComment: outcome.errorComment } : {}),
        suboperations: { completed: counts.completed, failed: counts.failed, warning: counts.warning },
        ...(outcome.datasets?.[0]?.length ? { dataset: outcome.datasets[0] } : {}),
      };
      if (outcome.status === undefined) {
        log.error({ side: 'upstream', why: outcome.failure, ...final.suboperations }, 'C-MOVE relay: the archive stopped answering');
        if (counts.completed + counts.failed + counts.warning > 0) return { ...final, errorComment: errorCommentOf(`upstream ${peer.name}: ${outcome.failure ?? 'no final response'}`) };
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
  return { status: Status.OUT_OF_RESOURCES_SUB_OPERATIONS, errorComment: errorCommentOf(`every archive failed: ${failures.join('; ')}`), suboperations: { completed: 0, failed: 0, warning: 0 } };
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
