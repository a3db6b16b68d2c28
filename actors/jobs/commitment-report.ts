// The Storage Commitment N-EVENT-REPORT (PS3.4 J.3.3): on the requester's own association while it
// holds it open, or on a new association to the requester's configured peer, proposing the SOP class
// with the router in SCP role (role selection SCU=0, SCP=1: PS3.4 J.3.3, PS3.7 D.3.3.4). Either way it
// is an SCU transaction machine (scuRequest) spawned by that association's machine.
import type { Logger } from 'pino';
import type { PeerConfig } from '../../config/config.ts';
import type { DimseOutcome } from '../../machines/dimse/dimse.events.ts';
import type { Command } from '../../protocol/dimse.ts';
import { CommandField, DATASET_PRESENT } from '../../protocol/dimse.ts';
import { encodeCommitmentResult, eventTypeOf } from '../../protocol/storage-commitment.ts';
import type { CommitmentResult } from '../../protocol/storage-commitment.ts';
import {
  EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE,
} from '../../protocol/uids.ts';
import type { Association } from '../net/association.ts';
import { ScuAssociation } from '../net/scu.ts';
import { peerConnection } from '../net/peer-connection.ts';

/** The report's command: Event Type 1 (all committed) or 2 (failures exist), on the well-known instance. */
export function eventReportCommand(messageId: number, result: CommitmentResult): Command {
  return {
    CommandField: CommandField.N_EVENT_REPORT_RQ,
    MessageID: messageId,
    AffectedSOPClassUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS,
    AffectedSOPInstanceUID: STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE,
    EventTypeID: eventTypeOf(result),
    CommandDataSetType: DATASET_PRESENT,
  };
}

/** Sends a report on an association the requester opened (the one its N-ACTION came on). */
export type SameAssociationReporter = {
  /** Whether the association is still established (data transfer): otherwise the report goes on a new one. */
  isOpen(): boolean;
  send(result: CommitmentResult): Promise<DimseOutcome>;
};

/** First Message ID of the router's own requests on an acceptor association: clear of the requester's. */
const OWN_MESSAGE_IDS = 0xc000;

/** A reporter on the acceptor `association`, on the presentation context `contextId` the N-ACTION came on. */
export function sameAssociationReporter(association: Association, contextId: number, dimseTimeoutMs: number): SameAssociationReporter {
  let next = OWN_MESSAGE_IDS;
  return {
    isOpen: () => association.machine.getSnapshot().status === 'active' && association.machine.getSnapshot().value === 'Sta6',
    send(result) {
      const messageId = next++;
      const context = association.contexts.get(contextId);
      if (!context) return Promise.resolve({ messageId, failure: 'the presentation context is gone' });
      const outcome = new Promise<DimseOutcome>((resolve) => {
        const sub = association.machine.on('DIMSE_COMPLETED', ({ outcome: o }) => {
          if (o.messageId !== messageId) return;
          sub.unsubscribe();
          resolve(o);
        });
      });
      association.machine.send({
        type: 'DIMSE_REQUEST_STARTED',
        service: 'scuRequest',
        input: {
          associationId: association.id, messageId, contextId, command: eventReportCommand(messageId, result), dimseTimeoutMs,
          dataset: { kind: 'bytes', data: encodeCommitmentResult(result, context.transferSyntax) },
        },
      });
      return outcome;
    },
  };
}

/** Opens an association to the requester's peer with the router in SCP role, sends the report, releases. Throws with why it failed. */
export async function reportOnNewAssociation(peer: PeerConfig, callingAeTitle: string, result: CommitmentResult, logger: Logger): Promise<void> {
  const scu = await ScuAssociation.open({
    ...peerConnection(peer),
    callingAeTitle, // the AE title the requester called
    contexts: [{ abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] }],
    roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, scuRole: false, scpRole: true }],
    logger,
  });
  try {
    const context = scu.contextFor(STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS);
    if (!context) throw new Error(`${peer.aeTitle} did not accept the Storage Commitment Push Model SOP class`);
    const messageId = scu.newMessageId();
    const outcome = await scu.runTransaction('scuRequest', context.id, eventReportCommand(messageId, result), {
      kind: 'bytes', data: encodeCommitmentResult(result, context.transferSyntax),
    });
    const why = reportFailure(outcome);
    if (why) throw refused(outcome) ? new ReportRefusedError(outcome.status!, why) : new Error(why);
  } finally {
    await scu.release().catch(() => scu.abort());
  }
}

/**
 * N-EVENT-REPORT-RSP statuses that are the requester's final word on this report (the GEMINI TF's
 * conformance statement, Table 21: 0211 transaction UID not recognized, 0213 expired, 0113 no such
 * event type, 0115 instances not in the request): sending it again cannot change them. Anything else
 * (0110, no answer, no association) is retried. A refused report leaves the modality without a
 * commitment: it keeps its images, the safe side.
 */
const FINAL_REFUSALS = new Set([0x0211, 0x0213, 0x0113, 0x0115]);

export const refused = (outcome: DimseOutcome): boolean => outcome.status !== undefined && FINAL_REFUSALS.has(outcome.status);

/** The requester answered the report with a final refusal (see FINAL_REFUSALS). */
export class ReportRefusedError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Why a report was not acknowledged, or undefined when it was (N-EVENT-REPORT-RSP Success). */
export function reportFailure(outcome: DimseOutcome): string | undefined {
  if (outcome.failure !== undefined) return outcome.failure;
  if (outcome.status !== 0) return `N-EVENT-REPORT-RSP status ${(outcome.status ?? 0xffff).toString(16).padStart(4, '0')}${outcome.errorComment ? ` (${outcome.errorComment})` : ''}`;
  return undefined;
}
