// A storage commitment request as a job: waiting → reporting → reported, resumed where its record
// left it, with what the inspector shows (instances still waiting, report attempts and last error).
import test from 'ava';
import { createActor } from 'xstate';
import { commitmentMachine } from '../../machines/commitment.machine.ts';
import type { CommitmentJobInput } from '../../machines/commitment.machine.ts';

const input = (state: 'waiting' | 'reporting'): CommitmentJobInput => ({
  id: '1.2.3', transactionUid: '1.2.3', requester: 'PETCT', commitWhen: 'delivered', instances: 3,
  deadline: '2026-12-08T00:00:00.000Z', state, waitingFor: 3, reportAttempts: 0,
});

test('waits, reports, retries the report, and ends once it is acknowledged', (t) => {
  const job = createActor(commitmentMachine, { input: input('waiting') }).start();
  t.is(job.getSnapshot().value, 'waiting');
  job.send({ type: 'PROGRESS', waitingFor: 1 });
  t.is(job.getSnapshot().context.waitingFor, 1);
  job.send({ type: 'REPORTED', via: 'new-association' });
  t.is(job.getSnapshot().value, 'waiting', 'nothing is reported before it is decided');
  job.send({ type: 'DECIDED', committed: 2, failed: 1 });
  t.is(job.getSnapshot().value, 'reporting');
  job.send({ type: 'REPORT_FAILED', attempts: 1, nextReportAt: '2026-12-07T18:00:05.000Z', error: 'ECONNREFUSED' });
  t.like(job.getSnapshot().context, { reportAttempts: 1, lastReportError: 'ECONNREFUSED', committed: 2, failed: 1 });
  job.send({ type: 'REPORTED', via: 'new-association' });
  t.is(job.getSnapshot().status, 'done');
  t.is(job.getSnapshot().context.reportedVia, 'new-association');
});

test('a request already decided before a restart resumes in reporting', (t) => {
  const job = createActor(commitmentMachine, { input: input('reporting') }).start();
  t.is(job.getSnapshot().value, 'reporting');
});
