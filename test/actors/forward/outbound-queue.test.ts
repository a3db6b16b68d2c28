import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { OutboundQueue, fingerprintOf, isSkipped } from '../../../actors/forward/outbound-queue.ts';
import type { EnqueueResult, OutboundQueueOptions, QueueItem, SkippedDuplicate } from '../../../actors/forward/outbound-queue.ts';
import { Spool } from '../../../actors/ingest/spool.ts';
import type { InstanceRecord } from '../../../actors/ingest/spool.ts';
import type { RetryPolicy } from '../../../actors/forward/retry-policy.ts';

const POLICY: RetryPolicy = { attempts: 3, initialBackoffMs: 1000, maxBackoffMs: 10_000, jitter: 0 };
const T0 = new Date('2024-05-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

async function openSpool(t: ExecutionContext, dir?: string, opts?: OutboundQueueOptions): Promise<{ dir: string; spool: Spool; queue: OutboundQueue }> {
  if (!dir) {
    dir = mkdtempSync(path.join(tmpdir(), 'outbound-queue-test-'));
    const made = dir;
    t.teardown(() => rmSync(made, { recursive: true, force: true }));
  }
  const spool = await Spool.open({ dir, fsync: false });
  t.teardown(() => spool.close());
  return { dir, spool, queue: OutboundQueue.open(spool, opts) };
}

/** Receive one instance into the spool and, in the same commit, queue it for each peer. */
async function receive(spool: Spool, queue: OutboundQueue, sop: string, series: string, peers: string[], extra?: () => void): Promise<QueueItem[]> {
  const incoming = spool.begin(Buffer.from(`header-${sop}`));
  incoming.write(Buffer.from(`body-${sop}`));
  const items: QueueItem[] = [];
  await incoming.commit(
    {
      sopInstanceUid: sop, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: '1.2.3', seriesInstanceUid: series,
      patientId: 'PID', transferSyntaxUid: '1.2.840.10008.1.2.1', callingAeTitle: 'MOD', calledAeTitle: 'ROUTER',
      listener: 'main', remoteAddress: '127.0.0.1', receivedAt: T0.toISOString(),
    },
    (record: InstanceRecord) => {
      for (const peer of peers) {
        const result = queue.enqueue(newItem(record, peer), T0);
        if (!isSkipped(result)) items.push(result);
      }
      extra?.();
    },
  );
  return items;
}

function newItem(record: InstanceRecord, peer: string) {
  return {
    peer, sopInstanceUid: record.sopInstanceUid, seriesInstanceUid: record.seriesInstanceUid, studyInstanceUid: record.studyInstanceUid,
    sopClassUid: record.sopClassUid, transferSyntaxUid: record.transferSyntaxUid, path: record.path,
    modifications: [{ op: 'set', tag: 'InstitutionName', value: 'X' }], rule: 'to-pacs',
  };
}

const sops = (items: QueueItem[]) => items.map((i) => i.sopInstanceUid);

test('an item enqueued inside the spool commit is durable with the instance and survives reopen', async (t) => {
  const first = await openSpool(t);
  const [a, b] = await receive(first.spool, first.queue, '1.1', 'S1', ['PACS', 'ARCHIVE']);
  t.like(a, { id: 'PACS:000000000001', peer: 'PACS', state: 'pending', attempts: 0, enqueuedAt: T0.toISOString(), nextAttemptAt: T0.toISOString() });
  t.is(b.id, 'ARCHIVE:000000000002');
  t.is(a.path, first.spool.get('1.1')!.path);
  await first.spool.close();

  const { spool, queue } = await openSpool(t, first.dir);
  t.is(spool.count(), 1);
  t.deepEqual(queue.peers(), ['ARCHIVE', 'PACS']);
  t.deepEqual(queue.list(), [b, a]);
  t.deepEqual(queue.get(a.id), a);
  t.deepEqual(queue.list('PACS'), [a]);
  t.is(queue.outstanding('1.1'), 2);
  t.deepEqual(queue.depth('PACS'), { pending: 1, dead: 0 });
  // The sequence continues after a restart: ids stay unique and in arrival order.
  const [c] = await receive(spool, queue, '1.2', 'S1', ['PACS']);
  t.is(c.id, 'PACS:000000000003');
});

test('a commit whose extra throws leaves neither instance nor queue item, and uses up no sequence number', async (t) => {
  const { spool, queue } = await openSpool(t);
  await t.throwsAsync(
    receive(spool, queue, '2.1', 'S1', ['PACS'], () => {
      throw new Error('rules engine exploded');
    }),
    { message: 'rules engine exploded' },
  );
  t.is(spool.count(), 0);
  t.deepEqual(queue.list(), []);
  t.deepEqual(queue.peers(), []);
  t.is(queue.outstanding('2.1'), 0);
  const [item] = await receive(spool, queue, '2.2', 'S1', ['PACS']);
  t.is(item.id, 'PACS:000000000001');
});

test('concurrent commits get distinct ids; enqueue outside a transaction is refused, add() runs one', async (t) => {
  const { spool, queue } = await openSpool(t);
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => receive(spool, queue, `3.${i}`, 'S1', ['PACS'])));
  const ids = all.flat().map((i) => i.id);
  t.is(new Set(ids).size, 20);
  t.deepEqual(queue.list('PACS').map((i) => i.id), [...ids].sort());
  const record = spool.get('3.0')!;
  t.throws(() => queue.enqueue(newItem(record, 'PACS')), { message: /inside a write transaction/ });
  const added = await queue.add(newItem(record, 'OTHER'));
  t.is(added.id, 'OTHER:000000000021');
  t.deepEqual(queue.get(added.id), added);
});

test('pending: due items of one peer in arrival order, limited; peers do not mix (even with similar names)', async (t) => {
  const { spool, queue } = await openSpool(t);
  for (let i = 1; i <= 5; i++) await receive(spool, queue, `4.${i}`, i % 2 ? 'S1' : 'S2', ['PACS', 'PACS:2', 'PACS2']);
  t.deepEqual(sops(queue.pending('PACS', { now: T0 })), ['4.1', '4.2', '4.3', '4.4', '4.5']);
  t.deepEqual(sops(queue.pending('PACS', { now: T0, limit: 2 })), ['4.1', '4.2']);
  t.deepEqual(queue.pending('PACS', { now: T0, limit: 0 }), []);
  t.true(queue.pending('PACS:2', { now: T0 }).every((i) => i.peer === 'PACS:2'));
  t.is(queue.pending('PACS:2', { now: T0 }).length, 5);
  t.deepEqual(queue.peers(), ['PACS', 'PACS2', 'PACS:2']);
  t.deepEqual(queue.pending('NOBODY'), []);
  t.is(queue.nextDueAt('NOBODY'), undefined);
  t.deepEqual(queue.nextDueAt('PACS'), T0);
});

test('a failed item backing off holds back later items of its series for that peer only', async (t) => {
  const { spool, queue } = await openSpool(t);
  const [s1a, s1aOther] = await receive(spool, queue, '5.1', 'S1', ['PACS', 'OTHER']);
  await receive(spool, queue, '5.2', 'S2', ['PACS', 'OTHER']);
  await receive(spool, queue, '5.3', 'S1', ['PACS', 'OTHER']);
  await receive(spool, queue, '5.4', 'S2', ['PACS', 'OTHER']);

  const failed = await queue.failed(s1a.id, { status: 0xa700, error: 'Out of Resources', retryable: true, policy: POLICY, now: T0 });
  t.like(failed, { state: 'pending', attempts: 1, lastStatus: 0xa700, lastError: 'Out of Resources', nextAttemptAt: at(1000).toISOString() });
  // 5.3 (series S1) waits behind 5.1; series S2 goes on; the other peer is not affected.
  t.deepEqual(sops(queue.pending('PACS', { now: at(10) })), ['5.2', '5.4']);
  t.deepEqual(sops(queue.pending('OTHER', { now: at(10) })), ['5.1', '5.2', '5.3', '5.4']);
  t.deepEqual(queue.nextDueAt('PACS'), T0); // S2's head is due
  await queue.delivered(queue.pending('PACS', { now: at(10) })[0].id, { status: 0 });
  await queue.delivered(queue.pending('PACS', { now: at(10) })[0].id, { status: 0 });
  t.deepEqual(queue.pending('PACS', { now: at(10) }), []);
  t.deepEqual(queue.nextDueAt('PACS'), at(1000));
  // Once due, the series leaves in the order received.
  t.deepEqual(sops(queue.pending('PACS', { now: at(1000) })), ['5.1', '5.3']);
  // An item being sent on another association holds its series back too.
  t.deepEqual(sops(queue.pending('OTHER', { now: T0, inFlight: new Set([s1aOther.id]) })), ['5.2', '5.4']);
});

test('failed: retryable failures back off exponentially, then become a dead letter after the configured attempts', async (t) => {
  const { spool, queue } = await openSpool(t);
  const [item] = await receive(spool, queue, '6.1', 'S1', ['PACS']);
  const fail = (now: Date) => queue.failed(item.id, { error: 'connection reset', retryable: true, policy: POLICY, now });
  t.like(await fail(T0), { state: 'pending', attempts: 1, nextAttemptAt: at(1000).toISOString() });
  t.like(await fail(at(1000)), { state: 'pending', attempts: 2, nextAttemptAt: at(3000).toISOString() });
  const dead = await fail(at(3000));
  t.like(dead, { state: 'dead', attempts: 3, deadReason: 'gave up after 3 attempts: connection reset' });
  t.false('lastStatus' in dead!);
  t.deepEqual(queue.depth('PACS'), { pending: 0, dead: 1 });
  t.deepEqual(queue.pending('PACS', { now: at(1e9) }), []);
  t.is(queue.nextDueAt('PACS'), undefined);
  t.is(queue.outstanding('6.1'), 1, 'a dead letter still needs its file');
  t.is(await queue.failed('PACS:000000000999', { error: 'x', retryable: true, policy: POLICY }), undefined);
});

test('failed: a non-retryable status is a dead letter at once and does not hold back its series', async (t) => {
  const { spool, queue } = await openSpool(t);
  const [first] = await receive(spool, queue, '7.1', 'S1', ['PACS']);
  await receive(spool, queue, '7.2', 'S1', ['PACS']);
  const dead = await queue.failed(first.id, { status: 0xa900, error: 'A900: Data Set does not match SOP Class', retryable: false, policy: POLICY, now: T0 });
  t.like(dead, { state: 'dead', attempts: 1, lastStatus: 0xa900, deadReason: 'A900: Data Set does not match SOP Class' });
  t.deepEqual(sops(queue.pending('PACS', { now: T0 })), ['7.2']);
});

test('retry makes dead and backing-off items due now with fresh attempts; by peer or by id', async (t) => {
  const { spool, queue } = await openSpool(t);
  const [a] = await receive(spool, queue, '8.1', 'S1', ['PACS']);
  const [b] = await receive(spool, queue, '8.2', 'S2', ['PACS']);
  await receive(spool, queue, '8.3', 'S3', ['OTHER']);
  await queue.failed(a.id, { error: 'rejected', retryable: false, policy: POLICY, now: T0 });
  await queue.failed(b.id, { error: 'timeout', retryable: true, policy: POLICY, now: T0 });
  t.is(await queue.retry(a.id, at(5)), 1);
  t.like(queue.get(a.id), { state: 'pending', attempts: 0, nextAttemptAt: at(5).toISOString(), lastError: 'rejected' });
  t.false('deadReason' in queue.get(a.id)!);
  t.like(queue.get(b.id), { attempts: 1 });
  t.is(await queue.retry('PACS', at(6)), 2);
  t.deepEqual(sops(queue.pending('PACS', { now: at(6) })), ['8.1', '8.2']);
  t.is(await queue.retry('NOBODY'), 0);
  t.is(queue.depth('OTHER').pending, 1, 'other peers untouched');
});

test('purge removes by id or by peer; delivered removes and records; outstanding follows both', async (t) => {
  const { spool, queue } = await openSpool(t);
  const [a1, b1] = await receive(spool, queue, '9.1', 'S1', ['PACS', 'ARCHIVE']);
  const [a2, b2] = await receive(spool, queue, '9.2', 'S1', ['PACS', 'ARCHIVE']);
  await receive(spool, queue, '9.3', 'S1', ['PACS']);
  t.is(queue.outstanding('9.1'), 2);

  await queue.delivered(a1.id, { status: 0xb000, now: at(1) });
  t.is(queue.get(a1.id), undefined);
  t.is(queue.outstanding('9.1'), 1);
  t.deepEqual(queue.deliveries('9.1'), [{ sopInstanceUid: '9.1', peer: 'PACS', status: 0xb000, at: at(1).toISOString(), id: a1.id, rule: 'to-pacs', count: 1, fingerprint: a1.fingerprint }]);
  t.regex(a1.fingerprint ?? '', /^[0-9a-f]{64}$/, 'the fingerprint of what PACS received is kept with the delivery');
  await queue.delivered(b1.id, { status: 0 });
  t.is(queue.outstanding('9.1'), 0);
  t.deepEqual(queue.deliveries('9.1').map((d) => d.peer), ['ARCHIVE', 'PACS']);
  t.deepEqual(queue.deliveries('9.10'), [], 'a UID prefix is not a match');
  await queue.delivered(a1.id, { status: 0 }); // already gone: nothing happens
  t.is(queue.deliveries('9.1').find((d) => d.peer === 'PACS')!.count, 1);

  t.is(await queue.purge(b2.id), 1);
  t.is(queue.outstanding('9.2'), 1);
  t.is(await queue.purge('PACS'), 2);
  t.is(queue.outstanding('9.2'), 0);
  t.is(queue.outstanding('9.3'), 0);
  t.deepEqual(queue.list(), []);
  t.deepEqual(queue.peers(), []);
  t.is(await queue.purge('PACS'), 0);
  await queue.delivered(a2.id, { status: 0 }); // purged while in flight: nothing recorded
  t.deepEqual(queue.deliveries('9.2'), []);
});

// ---- duplicates policy (issue 8) ----

const DUP_POLICIES: OutboundQueueOptions = { duplicates: { NEVER: 'never', CHANGED: 'if-changed', ALWAYS: 'always' } };
const ALL_PEERS = ['NEVER', 'CHANGED', 'ALWAYS', 'UNCONFIGURED'];

/** One copy of instance `sop` with dataset bytes `body` arrives and is routed to `peers` (modifications `mods`). */
async function arrive(spool: Spool, queue: OutboundQueue, sop: string, body: string, peers = ALL_PEERS, mods: unknown[] = []) {
  const incoming = spool.begin(Buffer.from(`header-${sop}`));
  incoming.write(Buffer.from(body));
  const results = new Map<string, EnqueueResult>();
  const record = await incoming.commit(
    {
      sopInstanceUid: sop, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: '1.2.3', seriesInstanceUid: 'S1',
      patientId: 'PID', transferSyntaxUid: '1.2.840.10008.1.2.1', callingAeTitle: 'MOD', calledAeTitle: 'ROUTER',
      listener: 'main', remoteAddress: '127.0.0.1', receivedAt: T0.toISOString(),
    },
    (r: InstanceRecord) => {
      for (const peer of peers) results.set(peer, queue.enqueue({ ...newItem(r, peer), modifications: mods }, T0));
    },
  );
  return { record, results, queued: peers.filter((p) => !isSkipped(results.get(p)!)) };
}

async function deliverAll(queue: OutboundQueue): Promise<void> {
  for (const item of queue.list()) if (item.state === 'pending') await queue.delivered(item.id, { status: 0, now: at(1) });
}

test('the spool hashes the dataset bytes as they stream (header excluded); items and deliveries carry the fingerprint', async (t) => {
  const { spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  const { record, results } = await arrive(spool, queue, '7.1', 'dataset-bytes', ['ALWAYS'], [{ set: 'X' }]);
  t.is(record.sha256, createHash('sha256').update('dataset-bytes').digest('hex'));
  const item = results.get('ALWAYS') as QueueItem;
  t.is(item.datasetSha256, record.sha256);
  t.is(item.fingerprint, fingerprintOf(record.sha256!, [{ set: 'X' }]));
  t.not(fingerprintOf(record.sha256!, []), item.fingerprint, 'the modifications are part of what the peer receives');
  await queue.delivered(item.id, { status: 0 });
  t.is(queue.deliveries('7.1')[0].fingerprint, item.fingerprint);
});

test('never: a delivered instance is not queued again, changed or not; always and unconfigured peers get every copy', async (t) => {
  const { spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  t.deepEqual((await arrive(spool, queue, '7.2', 'v1')).queued, ALL_PEERS, 'a first copy goes everywhere');
  await deliverAll(queue);
  const again = await arrive(spool, queue, '7.2', 'v1');
  t.deepEqual(again.queued, ['ALWAYS', 'UNCONFIGURED'], 'the same bytes: CHANGED skips them too');
  t.like(again.results.get('NEVER'), { skipped: true, peer: 'NEVER', sopInstanceUid: '7.2', policy: 'never', rule: 'to-pacs', duplicateOf: { delivery: 'NEVER:000000000001' } });
  t.regex((again.results.get('NEVER') as SkippedDuplicate).why, /already delivered at/);
  const changed = await arrive(spool, queue, '7.2', 'v2');
  t.deepEqual(changed.queued, ['CHANGED', 'ALWAYS', 'UNCONFIGURED']);
  t.is(queue.depth('NEVER').pending, 0);
  t.is(queue.skippedCount('NEVER'), 2);
  t.is(queue.policyOf('UNCONFIGURED'), 'always');
});

test('if-changed: the same bytes are skipped, other bytes or other modifications are queued', async (t) => {
  const { spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  await arrive(spool, queue, '7.3', 'v1', ['CHANGED']);
  await deliverAll(queue);
  const same = await arrive(spool, queue, '7.3', 'v1', ['CHANGED']);
  t.deepEqual(same.queued, []);
  t.regex((same.results.get('CHANGED') as SkippedDuplicate).why, /unchanged since the delivery at/);
  t.deepEqual((await arrive(spool, queue, '7.3', 'v2', ['CHANGED'])).queued, ['CHANGED'], 'other dataset bytes');
  await deliverAll(queue);
  t.deepEqual((await arrive(spool, queue, '7.3', 'v2', ['CHANGED'], [{ set: 'InstitutionName' }])).queued, ['CHANGED'], 'a rule that now modifies it');
  t.deepEqual(queue.skipped('CHANGED').map((s) => s.sopInstanceUid), ['7.3']);
});

test('an instance still pending for a peer: never and if-changed (same bytes) skip it, and the pending item sends the new copy', async (t) => {
  const { dir, spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  const first = await arrive(spool, queue, '7.4', 'v1');
  const again = await arrive(spool, queue, '7.4', 'v1');
  t.deepEqual(again.queued, ['ALWAYS', 'UNCONFIGURED']);
  t.like(again.results.get('NEVER'), { policy: 'never', duplicateOf: { item: first.results.get('NEVER')!.id } });
  t.regex((again.results.get('CHANGED') as SkippedDuplicate).why, /unchanged, already queued as CHANGED:/);
  // The spool replaced the file: every item that would have sent the old one sends the new one.
  t.false(existsSync(path.join(dir, first.record.path)));
  await spool.whenWritten(again.record.path); // held in memory at first: its file follows the commit
  for (const item of queue.list()) {
    t.is(item.path, again.record.path);
    t.true(existsSync(path.join(dir, item.path)));
  }
  // Changed bytes while the first copy still waits: if-changed queues them (never still does not).
  const changed = await arrive(spool, queue, '7.4', 'v2');
  t.deepEqual(changed.queued, ['ALWAYS', 'UNCONFIGURED'], 'the pending items now send v2 too, so v2 is no change for if-changed');
  t.is(queue.get(first.results.get('CHANGED')!.id)!.fingerprint, fingerprintOf(changed.record.sha256!, []));
  t.is(queue.depth('NEVER').pending, 1);
  t.is(queue.depth('CHANGED').pending, 1);
});

test('a dead letter is no delivery: never queues the instance again', async (t) => {
  const { spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  const first = await arrive(spool, queue, '7.5', 'v1', ['NEVER']);
  await queue.failed(first.results.get('NEVER')!.id, { error: 'C000', retryable: false, policy: POLICY });
  t.deepEqual((await arrive(spool, queue, '7.5', 'v1', ['NEVER'])).queued, ['NEVER']);
  t.deepEqual(queue.depth('NEVER'), { pending: 1, dead: 1 });
  t.is(queue.list('NEVER')[0].path, queue.list('NEVER')[1].path, 'the dead letter follows the new file too (a retry can still send it)');
});

test('skip records are durable with the instance row, survive reopen, and retention prunes them', async (t) => {
  const first = await openSpool(t, undefined, DUP_POLICIES);
  await arrive(first.spool, first.queue, '7.6', 'v1', ['NEVER']);
  await deliverAll(first.queue);
  await t.throwsAsync(
    (async () => {
      const incoming = first.spool.begin(Buffer.from('h'));
      incoming.write(Buffer.from('v1'));
      await incoming.commit(
        { ...first.spool.get('7.6')!, receivedAt: T0.toISOString() },
        (r) => {
          t.true(isSkipped(first.queue.enqueue(newItem(r, 'NEVER'), T0)));
          throw new Error('routing failed');
        },
      );
    })(),
    { message: 'routing failed' },
  );
  t.is(first.queue.skippedCount('NEVER'), 0, 'the aborted commit took its skip record with it');
  await arrive(first.spool, first.queue, '7.6', 'v1', ['NEVER']);
  await first.spool.close();
  const second = await openSpool(t, first.dir, DUP_POLICIES);
  t.like(second.queue.skipped('NEVER'), [{ sopInstanceUid: '7.6', at: T0.toISOString(), policy: 'never' }]);
  t.is(await second.queue.pruneSkipped(T0), 0, 'not older than the cut-off');
  t.is(await second.queue.pruneSkipped(at(1)), 1);
  t.deepEqual(second.queue.skipped(), []);
});

test('add() outside a spool commit (a failover hand-over) follows the peer\'s policy, from the stored row\'s hash', async (t) => {
  const { spool, queue } = await openSpool(t, undefined, DUP_POLICIES);
  const { record } = await arrive(spool, queue, '7.7', 'v1', ['CHANGED']);
  await deliverAll(queue);
  const item = newItem(record, 'CHANGED'); // no datasetSha256: taken from the stored row
  const same = await queue.add({ ...item, modifications: [] });
  t.true(isSkipped(same));
  const modified = await queue.add(item);
  t.false(isSkipped(modified), 'other modifications: changed');
  t.is((modified as QueueItem).datasetSha256, record.sha256);
});
