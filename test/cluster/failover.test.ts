// Issue 17: SIGKILL of the node holding a peer's lease mid-forward (storage: shared). Another node
// takes the expired lease and delivers the rest from the dead node's spool folder: every acknowledged
// instance arrives, and what arrives twice is counted (deliveries.count) and bounded by what was in
// flight (one association, the peer's maxAssociations 1: at most one item).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { startStorescp, tempDir } from '../helpers/processes.ts';
import { clusterApi, filesAt, forwardAllRules, startNode, storedOrder, storescu, until } from './nodes.ts';

const COUNT = 8;

test('SIGKILL of the lease holder mid-forward: the other node delivers the rest from the shared spool', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const out = tempDir('dest-');
  // One second per instance: the forward is still under way when the holder is killed.
  const dest = await startStorescp(out, { aeTitle: 'DEST', extraArgs: ['-v', '--sleep-during', '1'] });
  t.teardown(dest.stop);
  const shared = tempDir('shared-');
  const rulesDir = forwardAllRules('DEST');
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, maxAssociations: 1, idleReleaseSeconds: 1, timeouts: { dimseSeconds: 30 }, retry: { attempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  // n1 alone first: it receives everything and holds the peer's lease and slot.
  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n1.stop);
  const files = writeDataset(join(tempDir(), 's'), { count: COUNT, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 2048 });
  const sent = await storescu(n1, files);
  t.is(sent.code, 0, sent.stderr);
  const uids = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  const n2 = await startNode('n2', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 });
  t.teardown(n2.stop);
  await until('two instances delivered by n1', () => storedOrder(dest).length >= 2, 60_000, () => n1.output().slice(-3000));
  const before = await clusterApi(n2);
  t.deepEqual(before.leases.map((l: { owner: string }) => l.owner), ['n1'], 'n1 holds the lease of the item in flight');
  t.deepEqual(before.slots.map((s: { owner: string; peer: string }) => [s.peer, s.owner]), [['DEST', 'n1']]);
  n1.child.kill('SIGKILL');
  const killedAt = Date.now();
  await until('every acknowledged instance at the destination', () => uids.every((u) => filesAt(out).has(u)), 60_000, () => `${n2.output().slice(-4000)}\n${dest.output().slice(-2000)}`);
  t.log(`n2 delivered the rest ${Math.round((Date.now() - killedAt) / 1000)} s after the kill (lease 3 s; storescp --sleep-during 1 takes ~3 s per instance here)`);
  if (process.env.CLUSTER_TEST_LOGS) writeFileSync(process.env.CLUSTER_TEST_LOGS, `${n1.output()}\n----\n${n2.output()}\n----\n${dest.output()}`);
  t.regex(n2.output(), /"msg":"delivered"/, 'n2 delivered what n1 left');
  const order = storedOrder(dest);
  const duplicates = order.length - new Set(order).size;
  t.true(duplicates <= 1, `${duplicates} instances arrived twice; at most the one in flight may`);
  // The series order holds across the take-over (a repeated in-flight item aside).
  t.deepEqual([...new Set(order)], uids);
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  t.teardown(() => db.end());
  await until('every delivery recorded', async () => (await db.query(`SELECT count(*)::int AS n FROM deliveries`)).rows[0].n === COUNT, 10_000);
  const counted = (await db.query(`SELECT coalesce(sum(count - 1), 0)::int AS d FROM deliveries`)).rows[0].d;
  t.true(counted <= duplicates, 'PostgreSQL counts only duplicates that happened');
  const after = await clusterApi(n2);
  t.deepEqual(after.nodes.map((n: { name: string; alive: boolean }) => [n.name, n.alive]), [['n1', false], ['n2', true]], 'n1 shows as presumed down');
  t.is(after.depths.reduce((s: number, d: { pending: number }) => s + d.pending, 0), 0, 'shared queue drained');
});
