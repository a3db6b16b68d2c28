// One Storage Commitment request to a peer (the router as Push Model SCU): an association of its own,
// the N-ACTION (machines/dimse/n-action-scu.machine.ts) with the Action Information, then the
// association held a little while for a report on it (its N-EVENT-REPORT-RQ is dispatched to the
// N-EVENT-REPORT SCP machine, commitment-scu-report.ts) and released once that report is answered.
// What became of the request is for the caller (actors/jobs/commitment-scu.ts) to record.
import type { Logger } from 'pino';
import type { PeerConfig } from '../../config/config.ts';
import type { StoreResult } from '../../machines/dimse/dimse.events.ts';
import { CommandField, DATASET_PRESENT } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import { Status } from '../../protocol/status.ts';
import { encodeCommitmentRequest, REQUEST_STORAGE_COMMITMENT } from '../../protocol/storage-commitment.ts';
import type { SopReference } from '../../protocol/storage-commitment.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE } from '../../protocol/uids.ts';
import { classifyAssociationFailure } from '../forward/retry-policy.ts';
import type { Association } from '../net/association.ts';
import { peerConnection } from '../net/peer-connection.ts';
import { ScuAssociation } from '../net/scu.ts';
import { receiveNEventReport } from './commitment-scu-report.ts';

/** taken: the peer answered Success; unanswered: no answer (ask again later); refused: the peer said no (a failure for the instances). */
export type AskOutcome = { outcome: 'taken' } | { outcome: 'unanswered'; why: string } | { outcome: 'refused'; why: string };

export type AskOptions = {
  peer: PeerConfig;
  transactionUid: string;
  referenced: SopReference[];
  logger: Logger;
  /** A report on this association: its Event Information, recorded; the N-EVENT-REPORT-RSP's status. */
  onReport: (eventInformation: Uint8Array, transferSyntaxUid: string) => Promise<StoreResult>;
  /** The peer took the request (called before the association is held for a report). */
  taken: () => Promise<void>;
  /** Resolves once the transaction is decided (its report came, here or on a listener). */
  decided: Promise<void>;
  /** How long the association is held for a report after the N-ACTION-RSP. */
  holdMs: number;
};

export async function askPeer(o: AskOptions): Promise<AskOutcome> {
  const { peer } = o;
  let association: Association | undefined;
  let scu: ScuAssociation;
  try {
    scu = await ScuAssociation.open({
      ...peerConnection(peer),
      contexts: [{ abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] }],
      // A peer that reports on this association: its N-EVENT-REPORT-RQ is taken here; anything else is refused.
      onRequest: (contextId, command, expectsDataset) => {
        if (!association) return undefined;
        const input = { associationId: association.id, messageId: command.MessageID ?? 0, contextId, command, dimseTimeoutMs: peer.timeouts.dimseSeconds * 1000 };
        if (command.CommandField !== CommandField.N_EVENT_REPORT_RQ) {
          association.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'refusedRequest', input });
          return undefined;
        }
        return receiveNEventReport(association, input, o.onReport, expectsDataset);
      },
      logger: o.logger,
    });
    association = scu.association;
  } catch (err) {
    const message = (err as Error).message;
    return classifyAssociationFailure(err) === 'dead' ? { outcome: 'refused', why: `association refused: ${message}` } : { outcome: 'unanswered', why: message };
  }
  try {
    const context = scu.contextFor(STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS);
    if (!context) return { outcome: 'refused', why: 'the peer did not accept the Storage Commitment Push Model SOP class' };
    const command: Command = {
      CommandField: CommandField.N_ACTION_RQ, MessageID: scu.newMessageId(), RequestedSOPClassUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS,
      RequestedSOPInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE, ActionTypeID: REQUEST_STORAGE_COMMITMENT, CommandDataSetType: DATASET_PRESENT,
    };
    const data = encodeCommitmentRequest({ transactionUid: o.transactionUid, referenced: o.referenced }, context.transferSyntax);
    const outcome = await scu.runTransaction('nActionScu', context.id, command, { kind: 'bytes', data });
    if (outcome.status === undefined) {
      if (outcome.timedOut) scu.abort();
      return { outcome: 'unanswered', why: outcome.failure ?? 'no N-ACTION-RSP' };
    }
    if (outcome.status !== Status.SUCCESS) {
      return { outcome: 'refused', why: `N-ACTION-RSP status ${outcome.status.toString(16).padStart(4, '0')}${outcome.errorComment ? ` (${outcome.errorComment})` : ''}` };
    }
    await o.taken();
    // Held a little while for a report on this association; released at once when it comes (here or on a listener).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([o.decided, scu.closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, o.holdMs)))]);
    clearTimeout(timer);
    // A report taken here is answered before the release (its N-EVENT-REPORT-RSP must not follow the A-RELEASE-RQ).
    await transactionsEnded(scu.association, peer.timeouts.dimseSeconds * 1000);
    return { outcome: 'taken' };
  } finally {
    await scu.release().catch(() => scu.abort());
  }
}

/** Resolves once the association runs no transaction (or after `limitMs`, or when it closes). */
function transactionsEnded(association: Association, limitMs: number): Promise<void> {
  const busy = () => association.machine.getSnapshot().status === 'active' && Object.keys(association.machine.getSnapshot().children).length > 0;
  if (!busy()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, limitMs);
    const sub = association.machine.subscribe({ next: () => { if (!busy()) done(); }, complete: done, error: done });
    void association.done.then(done);
    function done() {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve();
    }
  });
}
