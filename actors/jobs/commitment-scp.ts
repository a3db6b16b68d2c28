// The acceptor's side of an N-ACTION-RQ (Storage Commitment Push Model): spawns the N-ACTION SCP
// machine with a recorder that hands the Action Information to the commitment service, and gathers
// the (small) dataset for it. Kept here so actors/net/acceptor.ts only dispatches.
import type { DimseInput } from '../../machines/dimse/dimse.events.ts';
import { transactionId } from '../../machines/association.machine.ts';
import { Status } from '../../protocol/status.ts';
import type { Association, DatasetSink } from '../net/association.ts';
import { sameAssociationReporter } from './commitment-report.ts';
import type { CommitmentService } from './commitment.ts';

/** An Action Information this large is not a commitment request: refused (0213), drained, not held. */
const MAX_ACTION_INFORMATION = 8 << 20;

export function receiveNAction(
  a: Association,
  service: CommitmentService,
  input: DimseInput,
  who: { listener: string; callingAeTitle: string; calledAeTitle: string },
  expectsDataset: boolean,
): DatasetSink | undefined {
  const context = a.contexts.get(input.contextId)!;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reporter = sameAssociationReporter(a, input.contextId, input.dimseTimeoutMs);
  const record = () => service.request({ ...who, transferSyntaxUid: context.transferSyntax, reporter }, Buffer.concat(chunks));
  a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nActionScp', input: { ...input, record } });
  const child = () => a.machine.getSnapshot().children[transactionId(input.messageId)];
  if (!expectsDataset) {
    child()?.send({ type: 'DATASET_FAILED', status: Status.MISSING_ATTRIBUTE, errorComment: 'N-ACTION-RQ without Action Information' });
    return undefined;
  }
  return {
    write: (data) => {
      size += data.length;
      if (size <= MAX_ACTION_INFORMATION) chunks.push(Uint8Array.from(data));
      return true;
    },
    drained: () => Promise.resolve(),
    end: () => {
      if (size > MAX_ACTION_INFORMATION) {
        a.log.warn({ size }, 'N-ACTION Action Information too large: refused');
        child()?.send({ type: 'DATASET_FAILED', status: Status.RESOURCE_LIMITATION, errorComment: `Action Information over ${MAX_ACTION_INFORMATION} bytes` });
      } else child()?.send({ type: 'DATASET_RECEIVED' });
    },
  };
}
