// A Storage Commitment N-EVENT-REPORT-RQ arriving on an association (the router is the SCU that
// asked): spawns the N-EVENT-REPORT SCP machine with a recorder that hands the Event Information to
// the commitment SCU service, and gathers the (small) dataset for it. Used on the router's own
// association to the peer (report on the same association) and by the acceptor (report on a new
// association, the peer in SCP role), so both only dispatch.
import type { DimseInput, StoreResult } from '../../machines/dimse/dimse.events.ts';
import { transactionId } from '../../machines/association.machine.ts';
import { Status } from '../../protocol/status.ts';
import type { Association, DatasetSink } from '../net/association.ts';

/** An Event Information this large is not a commitment report: refused (0213), drained, not held. */
const MAX_EVENT_INFORMATION = 8 << 20;

export function receiveNEventReport(
  a: Association,
  input: DimseInput,
  record: (eventInformation: Uint8Array, transferSyntaxUid: string) => Promise<StoreResult>,
  expectsDataset: boolean,
): DatasetSink | undefined {
  const context = a.contexts.get(input.contextId)!;
  const chunks: Uint8Array[] = [];
  let size = 0;
  a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'nEventReportScp', input: { ...input, record: () => record(Buffer.concat(chunks), context.transferSyntax) } });
  const child = () => a.machine.getSnapshot().children[transactionId(input.messageId)];
  if (!expectsDataset) {
    child()?.send({ type: 'DATASET_FAILED', status: Status.MISSING_ATTRIBUTE, errorComment: 'N-EVENT-REPORT-RQ without Event Information' });
    return undefined;
  }
  return {
    write: (data) => {
      size += data.length;
      if (size <= MAX_EVENT_INFORMATION) chunks.push(Uint8Array.from(data));
      return true;
    },
    drained: () => Promise.resolve(),
    end: () => {
      if (size > MAX_EVENT_INFORMATION) {
        a.log.warn({ size }, 'N-EVENT-REPORT Event Information too large: refused');
        child()?.send({ type: 'DATASET_FAILED', status: Status.RESOURCE_LIMITATION, errorComment: `Event Information over ${MAX_EVENT_INFORMATION} bytes` });
      } else child()?.send({ type: 'DATASET_RECEIVED' });
    },
  };
}
