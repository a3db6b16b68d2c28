// The router as Storage Commitment SCU toward a scripted peer: after delivering, it asks (N-ACTION with
// a new Transaction UID and the delivered instances), takes the report on the same association, and
// turns what the peer does not commit (a refusal, no report within waitHours) into dead letters for it.
import test from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CommitmentScuStore } from '../../../actors/jobs/commitment-scu-store.ts';
import { Spool } from '../../../actors/ingest/spool.ts';
import { commitmentsView } from '../../../actors/observe/console-commitments.ts';
import { sweepSpool } from '../../../actors/ingest/retention.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { tempDir } from '../../helpers/processes.ts';
import { scriptedCommitmentScp } from '../../helpers/scripted-commitment-scp.ts';
import type { ScriptedCommitmentScp } from '../../helpers/scripted-commitment-scp.ts';

const RULES = 'rules:\n  - name: all-to-archive\n    then: { forward: [ARCHIVE] }\n';
const archive = (scp: ScriptedCommitmentScp, storageCommitment: Record<string, unknown>) => ({
  name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port: scp.port, retry: { attempts: 3, initialBackoffSeconds: 1, maxBackoffSeconds: 1 },
  timeouts: { connectSeconds: 5, dimseSeconds: 10 }, storageCommitment: { enabled: true, ...storageCommitment },
});

async function setup(t: import('ava').ExecutionContext, scp: ScriptedCommitmentScp, storageCommitment: Record<string, unknown> = {}) {
  t.teardown(() => scp.close());
  const router = await routerWith([archive(scp, storageCommitment)], RULES);
  t.teardown(async () => { await router.stop(); rmSync(router.dir, { recursive: true, force: true }); });
  const dir = tempDir('stgscu-in-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { router, dir };
}

test('a report on the same association: the instances committed, the report answered before the association is released', async (t) => {
  const scp = await scriptedCommitmentScp();
  const { router, dir } = await setup(t, scp);
  const sops = await send(router.port, dir, [{}, {}, {}]);
  await eventually(t, 'committed by ARCHIVE', () => sops.every((s) => router.commitmentScu.store.instance('ARCHIVE', s)?.state === 'committed'), 30_000);
  t.is(scp.requests.length, 1, 'one request for the three instances');
  t.deepEqual(scp.requests[0].referenced.map((r) => r.sopInstanceUid).sort(), [...sops].sort());
  t.regex(scp.requests[0].transactionUid, /^2\.25\.\d+$/);
  const request = router.commitmentScu.store.request(scp.requests[0].transactionUid)!;
  t.is(request.state, 'done');
  t.is(request.reportedVia, 'same-association');
  t.is(request.committed, 3);
  await eventually(t, 'the router answered the report with Success', () => scp.reportResponses.length === 1, 10_000);
  t.is(scp.reportResponses[0].Status, 0);
  t.false(router.commitmentScu.holds(sops[0]));
  t.is(router.queue.list('ARCHIVE').length, 0, 'no dead letter');
  // The console lists it among the requests sent to peers.
  t.like(commitmentsView(router).sent[0], { peer: 'ARCHIVE', state: 'done', instances: 3, committed: 3, failed: 0, reportedVia: 'same-association' });
});

test('batch: no request carries more than `batch` instances', async (t) => {
  const scp = await scriptedCommitmentScp();
  const { router, dir } = await setup(t, scp, { batch: 2 });
  const sops = await send(router.port, dir, [{}, {}, {}, {}, {}]);
  await eventually(t, 'all committed', () => sops.every((s) => router.commitmentScu.store.instance('ARCHIVE', s)?.state === 'committed'), 30_000);
  t.true(scp.requests.every((r) => r.referenced.length <= 2), JSON.stringify(scp.requests.map((r) => r.referenced.length)));
  t.deepEqual(scp.requests.flatMap((r) => r.referenced.map((x) => x.sopInstanceUid)).sort(), [...sops].sort());
});

test('failed in the report: dead letters with the failure reason in words', async (t) => {
  const scp = await scriptedCommitmentScp({
    result: (r) => ({ transactionUid: r.transactionUid, committed: r.referenced.slice(1), failed: [{ ...r.referenced[0], failureReason: 0x0119 }] }),
  });
  const { router, dir } = await setup(t, scp);
  const sops = await send(router.port, dir, [{}, {}]);
  await eventually(t, 'both decided', () => sops.every((s) => ['committed', 'failed'].includes(router.commitmentScu.store.instance('ARCHIVE', s)?.state ?? '')), 30_000);
  const failedSop = scp.requests[0].referenced[0].sopInstanceUid;
  const entry = router.commitmentScu.store.instance('ARCHIVE', failedSop)!;
  t.is(entry.state, 'failed');
  t.is(entry.why, 'failure reason 0119 class / instance conflict');
  const dead = router.queue.list('ARCHIVE');
  t.deepEqual(dead.map((i) => [i.sopInstanceUid, i.state, i.deadReason]), [[failedSop, 'dead', 'storage commitment: failure reason 0119 class / instance conflict']]);
  t.true(router.queue.outstanding(failedSop) > 0, 'the dead letter keeps the file from retention');
});

test('the peer refuses the N-ACTION: every instance of it is a dead letter naming the status', async (t) => {
  const scp = await scriptedCommitmentScp({ actionStatus: 0x0118 });
  const { router, dir } = await setup(t, scp);
  const sops = await send(router.port, dir, [{}, {}]);
  await eventually(t, 'two dead letters', () => router.queue.list('ARCHIVE').filter((i) => i.state === 'dead').length === 2, 30_000);
  for (const item of router.queue.list('ARCHIVE')) t.regex(item.deadReason!, /storage commitment request refused: N-ACTION-RSP status 0118/);
  t.deepEqual(router.queue.list('ARCHIVE').map((i) => i.sopInstanceUid).sort(), [...sops].sort());
});

test('no report within waitHours: failed, a dead letter saying so', async (t) => {
  const scp = await scriptedCommitmentScp({ report: 'none' });
  // 0.0005 h: under two seconds.
  const { router, dir } = await setup(t, scp, { waitHours: 0.0005 });
  const [sop] = await send(router.port, dir, [{}]);
  await eventually(t, 'asked', () => scp.requests.length === 1, 30_000);
  t.true(router.commitmentScu.holds(sop), 'held while the report is awaited');
  // Retention with no keep period, as the router wires it: the instance stays while its commitment is awaited.
  const swept = await sweepSpool(router.spool, router.queue, 0, silent, Date.now(), { holds: (s) => router.commitmentScu.holds(s) });
  t.is(swept.removed, 0);
  t.truthy(router.spool.get(sop));
  await eventually(t, 'failed for want of a report', () => router.commitmentScu.store.instance('ARCHIVE', sop)?.state === 'failed', 30_000);
  t.regex(router.commitmentScu.store.instance('ARCHIVE', sop)!.why!, /no storage commitment report within 0\.0005 h/);
  t.regex(router.queue.list('ARCHIVE')[0].deadReason!, /no storage commitment report within 0\.0005 h/);
  t.false(router.commitmentScu.holds(sop));
});

test('an N-ACTION left unanswered is asked again after the backoff, under a new Transaction UID', async (t) => {
  const scp = await scriptedCommitmentScp({ silentActions: 1 });
  t.teardown(() => scp.close());
  const peer = { ...archive(scp, {}), timeouts: { connectSeconds: 5, dimseSeconds: 1 } };
  const router = await routerWith([peer], RULES);
  t.teardown(async () => { await router.stop(); rmSync(router.dir, { recursive: true, force: true }); });
  const dir = tempDir('stgscu-in-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [sop] = await send(router.port, dir, [{}]);
  await eventually(t, 'committed on the second request', () => router.commitmentScu.store.instance('ARCHIVE', sop)?.state === 'committed', 30_000);
  t.is(scp.requests.length, 2);
  t.not(scp.requests[0].transactionUid, scp.requests[1].transactionUid);
  const first = router.commitmentScu.store.request(scp.requests[0].transactionUid)!;
  t.is(first.state, 'abandoned');
  t.regex(first.error!, /no response within 1000 ms/);
  t.is(router.commitmentScu.store.instance('ARCHIVE', sop)!.attempts, 1);
});

test('a report for a transaction the router did not ask is answered 0110 with an Error Comment; its instances stay asked', async (t) => {
  const scp = await scriptedCommitmentScp({ result: (r) => ({ transactionUid: '1.2.3.999', committed: r.referenced, failed: [] }) });
  const { router, dir } = await setup(t, scp);
  const [sop] = await send(router.port, dir, [{}]);
  await eventually(t, 'the router answered the report', () => scp.reportResponses.length === 1, 30_000);
  t.is(scp.reportResponses[0].Status, 0x0110);
  t.regex(scp.reportResponses[0].ErrorComment!, /1\.2\.3\.999 is not one the router asked/);
  t.is(router.commitmentScu.store.instance('ARCHIVE', sop)!.state, 'requested');
  t.true(router.commitmentScu.holds(sop));
});

test('an exclusive peer: the commitment association takes its turn with the forwarding one, never beside it', async (t) => {
  // No report: the router holds its commitment association for a report a while; deliveries meanwhile wait for their turn.
  const scp = await scriptedCommitmentScp({ report: 'none' });
  t.teardown(() => scp.close());
  const router = await routerWith([{ ...archive(scp, {}), exclusive: true, maxAssociations: 1 }], RULES);
  t.teardown(async () => { await router.stop(); rmSync(router.dir, { recursive: true, force: true }); });
  const dir = tempDir('stgscu-in-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await send(router.port, dir, [{}, {}]);
  await eventually(t, 'asked for the first two', () => scp.requests.length === 1, 30_000);
  const second = await send(router.port, dir, [{}, {}]);
  await eventually(t, 'the next two delivered, then asked', () => scp.requests.length === 2, 30_000);
  t.deepEqual(scp.stored.sort(), [...first, ...second].sort());
  t.is(scp.maxConcurrent, 1, 'one association at a time');
});

test('a delivery the commitment service never recorded (the process died in between) is asked about at the next start', async (t) => {
  const scp = await scriptedCommitmentScp();
  t.teardown(() => scp.close());
  const storageDir = join(tempDir('stgscu-data-'), 'data');
  const dir = tempDir('stgscu-in-');
  const first = await routerWith([archive(scp, {})], RULES, { storageDir });
  const sops = await send(first.port, dir, [{}, {}]);
  await eventually(t, 'committed by ARCHIVE', () => sops.every((s) => first.commitmentScu.store.instance('ARCHIVE', s)?.state === 'committed'), 30_000);
  await first.stop();
  // As if the process had died after the queue recorded the deliveries and before their events were followed.
  const spool = await Spool.open({ dir: storageDir, logger: silent });
  const store = new CommitmentScuStore(spool);
  await store.remove(sops.map((s) => store.instance('ARCHIVE', s)!));
  t.is(store.instances('ARCHIVE').length, 0);
  await spool.close();

  const again = await routerWith([archive(scp, {})], RULES, { storageDir });
  t.teardown(() => again.stop());
  await eventually(t, 'asked again and committed', () => sops.every((s) => again.commitmentScu.store.instance('ARCHIVE', s)?.state === 'committed'), 30_000);
  t.is(scp.requests.length, 2);
  t.deepEqual(scp.requests[1].referenced.map((r) => r.sopInstanceUid).sort(), [...sops].sort());
});
