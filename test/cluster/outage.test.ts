// Issue 17: PostgreSQL stopped for 10 s under load. Ingest goes on (every instance sent meanwhile is
// acknowledged: the outbox is the node's own durable queue), the node says it is degraded (log line at
// warn, /api/cluster and the console), and once PostgreSQL is back the outbox publishes and the backlog
// drains to the destination.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { tempDir } from '../helpers/processes.ts';
import { clusterApi, clusterWithDestination, filesAt, forwardAllRules, startNode, storedOrder, storescu, until } from './nodes.ts';

test('PostgreSQL down for 10 s under load: ingest goes on, the node is degraded, the backlog drains when it returns', async (t) => {
  const { pgServer, out, dest, shared } = await clusterWithDestination(t);
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, maxAssociations: 2, idleReleaseSeconds: 1, retry: { attempts: 100, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const rulesDir = forwardAllRules('DEST');
  const nodes = [
    await startNode('n1', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3 }),
    await startNode('n2', { pg: pgServer, shared, rulesDir, peers, leaseSeconds: 3, storage: 'shared' }),
  ];
  for (const n of nodes) t.teardown(n.stop);
  const batch = (name: string, count: number) => writeDataset(join(tempDir(), name), { count, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 4096 });
  const before = nodes.map((_, i) => batch(`before${i}`, 30));
  const during = nodes.map((_, i) => batch(`during${i}`, 30));
  // Load on both nodes; PostgreSQL stops once forwarding is under way.
  const sending = nodes.map((n, i) => storescu(n, before[i]));
  await until('forwarding under way', () => storedOrder(dest).length >= 3, 60_000, () => nodes.map((n) => n.output().slice(-2000)).join('\n'));
  await pgServer.stop();
  const stoppedAt = Date.now();
  const meanwhile = nodes.map((n, i) => storescu(n, during[i]));
  const results = await Promise.all([...sending, ...meanwhile]);
  results.forEach((r) => t.is(r.code, 0, `every instance acknowledged while PostgreSQL is down: ${r.stderr}`));
  if (results.some((r) => r.code !== 0)) t.log(nodes.map((n) => n.output().slice(-6000)).join('\n----\n'));
  await until('both nodes degraded', () => nodes.every((n) => n.output().includes('cluster database unreachable: node degraded')), 20_000, () => nodes.map((n) => n.output().slice(-2000)).join('\n'));
  const api = await clusterApi(nodes[0]);
  t.true(api.degraded, '/api/cluster says degraded');
  t.true(api.unpublished > 0, 'routed instances wait in the outbox');
  const view = (await (await fetch(`http://127.0.0.1:${nodes[0].inspectPort}/api/console`)).json()) as { cluster?: { degraded: boolean } };
  t.true(view.cluster?.degraded, 'the console says degraded');
  await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - stoppedAt))));
  await pgServer.restart();
  const restartedAt = Date.now();
  const uids = await Promise.all([...before, ...during].flat().map(async (f) => (await readPart10File(f)).sopInstanceUid));
  await until('the backlog drained to the destination', () => uids.every((u) => filesAt(out).has(u)), 90_000, () => nodes.map((n) => n.output().slice(-3000)).join('\n----\n'));
  t.log(`PostgreSQL down ${Math.round((restartedAt - stoppedAt) / 1000)} s; backlog of ${uids.length} drained ${Math.round((Date.now() - restartedAt) / 1000)} s after it returned`);
  if (process.env.CLUSTER_TEST_LOGS) writeFileSync(process.env.CLUSTER_TEST_LOGS, nodes.map((n) => n.output()).join('\n----\n'));
  await until('both nodes no longer degraded', () => nodes.every((n) => n.output().includes('cluster database reachable again')), 20_000);
  t.false((await clusterApi(nodes[0])).degraded);
  for (const n of nodes) t.is(n.child.exitCode ?? n.child.signalCode, null, `${n.name} kept running:\n${n.output().slice(-3000)}`);
});
