// The console's storage commitment section (issue 15): requests received from modalities (waiting
// for their instances → reporting → reported, or failed: some instance not committed, or the report
// refused for good) and requests the router sent to its peers (sending → requested → done, or
// abandoned: asked again). Open ones first, then the most recent; UIDs only, no patient data.
import type { CommitmentRecord } from '../jobs/commitment-store.ts';
import type { SentRequest } from '../jobs/commitment-scu-store.ts';

/** Rows shown per list (open ones are always shown first). */
const SHOWN = 20;

export type CommitmentsSource = {
  commitment: { store: { list(): CommitmentRecord[] } };
  commitmentScu: { store: { requests(): SentRequest[] } };
};

export function commitmentsView(router: CommitmentsSource) {
  const received = router.commitment.store.list()
    .sort((a, b) => Number(a.state === 'reported') - Number(b.state === 'reported') || b.receivedAt.localeCompare(a.receivedAt))
    .slice(0, SHOWN)
    .map((r) => ({
      transactionUid: r.transactionUid,
      requester: r.callingAeTitle,
      listener: r.listener,
      commitWhen: r.commitWhen,
      state: r.state === 'reported' && ((r.result?.failed.length ?? 0) > 0 || r.reportRefused) ? 'failed' : r.state,
      instances: r.referenced.length,
      waitingFor: Object.keys(r.waitingFor ?? {}).length,
      committed: r.result?.committed.length ?? null,
      failed: r.result?.failed.length ?? null,
      receivedAt: r.receivedAt,
      deadline: r.deadline,
      reportAttempts: r.reportAttempts,
      lastReportError: r.lastReportError ?? r.reportRefused ?? null,
      reportedVia: r.reportedVia ?? null,
    }));
  const open = (r: SentRequest) => r.state === 'sending' || r.state === 'requested';
  const sent = router.commitmentScu.store.requests()
    .sort((a, b) => Number(open(b)) - Number(open(a)) || b.createdAt.localeCompare(a.createdAt))
    .slice(0, SHOWN)
    .map((r) => ({
      transactionUid: r.transactionUid, peer: r.peer, state: r.state, instances: r.referenced.length,
      committed: r.committed ?? null, failed: r.failed ?? null, createdAt: r.createdAt, reportedVia: r.reportedVia ?? null, error: r.error ?? null,
    }));
  return { received, sent };
}
