// The Q/R jobs' machines (issue 16): each upstream association is a child while it is open, in Sta1
// when spawned (ScuAssociation drives it from there), gone once closed; the counts are recorded; ENDED
// ends the job.
import test from 'ava';
import { createActor } from 'xstate';
import { qrUpstreamMachine } from '../../machines/qr-upstream.machine.ts';
import { retrieveThroughMachine } from '../../machines/retrieve-through.machine.ts';

test('a C-FIND job: association children come and go, matches per source recorded, ENDED is final', (t) => {
  const job = createActor(qrUpstreamMachine, { input: { service: 'C-FIND', requester: 'VIEWER', level: 'STUDY', uid: '', sources: ['A', 'B'] } }).start();
  job.send({ type: 'ASSOCIATION_OPENING', id: 'association:A#1' });
  job.send({ type: 'ASSOCIATION_OPENING', id: 'association:B#1' });
  const children = job.getSnapshot().children as Record<string, { getSnapshot(): { value: unknown } } | undefined>;
  t.deepEqual(Object.keys(children).sort(), ['association:A#1', 'association:B#1']);
  t.is(children['association:A#1']!.getSnapshot().value, 'Sta1', 'idle, ready for ScuAssociation.open');
  job.send({ type: 'MATCHES', bySource: { A: 2, B: 1 } });
  job.send({ type: 'ASSOCIATION_CLOSED', id: 'association:A#1' });
  t.deepEqual(Object.keys(job.getSnapshot().children), ['association:B#1']);
  t.deepEqual(job.getSnapshot().context.matches, { A: 2, B: 1 });
  job.send({ type: 'ENDED', status: 0 });
  t.is(job.getSnapshot().status, 'done');
  t.is(job.getSnapshot().context.status, 0);
});

test('a retrieve-through job: its upstream and delivery associations are children; progress on both sides recorded', (t) => {
  const job = createActor(retrieveThroughMachine, { input: { level: 'STUDY', uid: '1.2', to: 'destination WS', sources: ['A'], requester: 'VIEWER', service: 'C-MOVE' } }).start();
  job.send({ type: 'ASSOCIATION_OPENING', id: 'association:A#1' });
  job.send({ type: 'ASSOCIATION_OPENING', id: 'association:WS#1' });
  t.deepEqual(Object.keys(job.getSnapshot().children).sort(), ['association:A#1', 'association:WS#1']);
  job.send({ type: 'PROGRESS', upstream: { remaining: 2, completed: 3, failed: 0, warning: 0 }, delivered: { completed: 2, failed: 0, warning: 0 }, waiting: 1 });
  t.like(job.getSnapshot().context, { requester: 'VIEWER', waiting: 1, upstream: { completed: 3 }, delivered: { completed: 2 } });
  job.send({ type: 'ASSOCIATION_CLOSED', id: 'association:WS#1' });
  t.deepEqual(Object.keys(job.getSnapshot().children), ['association:A#1']);
  job.send({ type: 'ENDED', status: 0 });
  t.is(job.getSnapshot().status, 'done');
});
