// A Storage Commitment N-EVENT-REPORT-RQ arriving on an association (the router is the SCU that
// asked): its Event Information goes to the commitment SCU service's `record`. Used on the router's
// own association to the peer (report on the same association) and by the acceptor (report on a new
// association, the peer in SCP role), so both only dispatch.
import type { DimseInput, StoreResult } from '../../machines/dimse/dimse.events.ts';
import type { Association, DatasetSink } from '../net/association.ts';
import { receiveCommitmentMessage } from './commitment-receive.ts';

export function receiveNEventReport(
  a: Association,
  input: DimseInput,
  record: (eventInformation: Uint8Array, transferSyntaxUid: string) => Promise<StoreResult>,
  expectsDataset: boolean,
): DatasetSink | undefined {
  return receiveCommitmentMessage(a, 'N-EVENT-REPORT', input, record, expectsDataset);
}
