// Receiving a Storage Commitment request or report (N-ACTION-RQ at the SCP, N-EVENT-REPORT-RQ at the
// SCU that asked): spawns the message's SCP machine with a recorder that hands its (small) dataset,
// gathered whole, to the commitment service. A message without one, or with one too large to be a
// commitment, is refused with the standard status.
import type { DimseInput, StoreResult } from '../../machines/dimse/dimse.events.ts';
import { transactionId } from '../../machines/association.machine.ts';
import { Status } from '../../protocol/status.ts';
import type { Association, DatasetSink } from '../net/association.ts';
import { collectingSink } from '../net/collecting-sink.ts';

/** An Action or Event Information this large is not a commitment message: refused (0213), drained, not held. */
const MAX_INFORMATION = 8 << 20;

const MESSAGES = {
  'N-ACTION': { service: 'nActionScp', information: 'Action Information' },
  'N-EVENT-REPORT': { service: 'nEventReportScp', information: 'Event Information' },
} as const;

export function receiveCommitmentMessage(
  a: Association,
  message: keyof typeof MESSAGES,
  input: DimseInput,
  record: (information: Uint8Array, transferSyntaxUid: string) => Promise<StoreResult>,
  expectsDataset: boolean,
): DatasetSink | undefined {
  const { service, information } = MESSAGES[message];
  const context = a.contexts.get(input.contextId)!;
  let received: Uint8Array = new Uint8Array(0);
  a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service, input: { ...input, record: () => record(received, context.transferSyntax) } });
  const child = () => a.machine.getSnapshot().children[transactionId(input.messageId)];
  if (!expectsDataset) {
    child()?.send({ type: 'DATASET_FAILED', status: Status.MISSING_ATTRIBUTE, errorComment: `${message}-RQ without ${information}` });
    return undefined;
  }
  return collectingSink((dataset) => {
    received = dataset;
    child()?.send({ type: 'DATASET_RECEIVED' });
  }, {
    maxBytes: MAX_INFORMATION,
    exceeded: (size) => {
      a.log.warn({ size }, `${message} ${information} too large: refused`);
      child()?.send({ type: 'DATASET_FAILED', status: Status.RESOURCE_LIMITATION, errorComment: `${information} over ${MAX_INFORMATION} bytes` });
    },
  });
}
