// The console's storage commitment section: requests received (open ones first; a report with failed
// instances, or refused, shows as failed) and requests sent to peers.
import test from 'ava';
import { commitmentsView } from '../../../actors/observe/console-commitments.ts';
import type { CommitmentRecord } from '../../../actors/jobs/commitment-store.ts';
import type { SentRequest } from '../../../actors/jobs/commitment-scu-store.ts';

const ref = (n: number) => ({ sopClassUid: '1.2.840.10008.5.1.4.1.1.2', sopInstanceUid: `1.2.3.${n}` });
const record = (id: string, over: Partial<CommitmentRecord>): CommitmentRecord => ({
  id, transactionUid: id, listener: 'main', callingAeTitle: 'CT1', calledAeTitle: 'DICOM_ROUTER', peer: 'CT1', commitWhen: 'delivered', report: 'same-association-first',
  referenced: [ref(1), ref(2)], receivedAt: '2026-01-01T10:00:00.000Z', deadline: '2026-01-02T10:00:00.000Z', state: 'waiting', reportAttempts: 0, ...over,
});

test('received: open first (newest first), a report with failures as failed; sent: open first', (t) => {
  const view = commitmentsView({
    commitment: { store: { list: () => [
      record('1.1', { state: 'reported', receivedAt: '2026-01-01T12:00:00.000Z', reportedVia: 'new-association', result: { transactionUid: '1.1', committed: [ref(1)], failed: [{ ...ref(2), failureReason: 0x0110 }] } }),
      record('1.2', { state: 'waiting', waitingFor: { '1.2.3.1': 'not yet delivered to PACS' } }),
      record('1.3', { state: 'reported', receivedAt: '2026-01-01T11:00:00.000Z', result: { transactionUid: '1.3', committed: [ref(1), ref(2)], failed: [] } }),
      record('1.4', { state: 'reporting', receivedAt: '2026-01-01T09:00:00.000Z', reportAttempts: 2, lastReportError: 'ECONNREFUSED' }),
    ] } },
    commitmentScu: { store: { requests: (): SentRequest[] => [
      { transactionUid: '2.1', peer: 'PACS', referenced: [ref(1)], state: 'done', createdAt: '2026-01-01T12:00:00.000Z', committed: 1, failed: 0, reportedVia: 'listener' },
      { transactionUid: '2.2', peer: 'PACS', referenced: [ref(2)], state: 'requested', createdAt: '2026-01-01T11:00:00.000Z' },
    ] } },
  });
  t.deepEqual(view.received.map((r) => [r.transactionUid, r.state]), [['1.2', 'waiting'], ['1.4', 'reporting'], ['1.1', 'failed'], ['1.3', 'reported']]);
  t.is(view.received[0].waitingFor, 1);
  t.is(view.received[1].lastReportError, 'ECONNREFUSED');
  t.deepEqual([view.received[2].committed, view.received[2].failed], [1, 1]);
  t.deepEqual(view.sent.map((r) => [r.transactionUid, r.state, r.reportedVia]), [['2.2', 'requested', null], ['2.1', 'done', 'listener']]);
});
