// The acceptor's side of an N-ACTION-RQ (Storage Commitment Push Model): the Action Information goes
// to the commitment service, with the reporter that answers on this association when it can. Kept
// here so actors/net/acceptor.ts only dispatches.
import type { DimseInput } from '../../machines/dimse/dimse.events.ts';
import type { Association, DatasetSink } from '../net/association.ts';
import { receiveCommitmentMessage } from './commitment-receive.ts';
import { sameAssociationReporter } from './commitment-report.ts';
import type { CommitmentService } from './commitment.ts';

export function receiveNAction(
  a: Association,
  service: CommitmentService,
  input: DimseInput,
  who: { listener: string; callingAeTitle: string; calledAeTitle: string },
  expectsDataset: boolean,
): DatasetSink | undefined {
  const reporter = sameAssociationReporter(a, input.contextId, input.dimseTimeoutMs);
  return receiveCommitmentMessage(a, 'N-ACTION', input, (information, transferSyntaxUid) => service.request({ ...who, transferSyntaxUid, reporter }, information), expectsDataset);
}
