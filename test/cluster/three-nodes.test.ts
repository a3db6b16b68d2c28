// Issue 17: three router nodes on one PostgreSQL with storage: shared. DCMTK storescu sends a series
// to each; every instance reaches the one storescp destination, each series in the order received,
// while the peer takes one association at a time from the whole cluster (maxAssociations: 1).
import test from 'ava';
import { join } from 'node:path';
import pg from 'pg';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { tempDir } from '../helpers/processes.ts';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { clusterApi, clusterWithDestination, filesAt, forwardAllRules, startNode, storedOrder, storescu, until } from './nodes.ts';
import type { Node } from './nodes.ts';

test('three nodes, storage shared: every instance arrives, each series in order', async (t) => {
  const { pgServer, out, dest, shared } = await clusterWithDestination(t);
  const rulesDir = forwardAllRules('DEST');
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, maxAssociations: 1, idleReleaseSeconds: 1, retry: { attempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const nodes: Node[] = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const node = await startNode(name, { pg: pgServer, shared, rulesDir, peers });
    t.teardown(node.stop);
    nodes.push(node);
  }
  const series = nodes.map((n, i) => writeDataset(join(tempDir(), `s${i}`), { count: 12, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 2048 }));
  const results = await Promise.all(nodes.map((n, i) => storescu(n, series[i])));
  results.forEach((r, i) => t.is(r.code, 0, `storescu to ${nodes[i].name}: ${r.stderr}`));
  const uids = await Promise.all(series.map((files) => Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid))));
  const all = uids.flat();
  await until('every instance at the destination', () => all.every((u) => filesAt(out).has(u)), 60_000, () => nodes.map((n) => n.output().slice(-3000)).join('\n----\n'));
  const order = storedOrder(dest);
  for (const s of uids) t.deepEqual(order.filter((u) => s.includes(u)), s, 'series order kept at the destination');

  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  t.teardown(() => db.end());
  const delivered = await db.query(`SELECT count(*)::int AS n, max(count)::int AS most FROM deliveries WHERE peer = 'DEST'`);
  t.deepEqual(delivered.rows[0], { n: all.length, most: 1 }, 'each instance delivered once, recorded in PostgreSQL');
  const byNode = await db.query(`SELECT node, count(*)::int AS n FROM queue_items GROUP BY node ORDER BY node`);
  t.deepEqual(byNode.rows, nodes.map((n) => ({ node: n.name, n: 12 })), 'each node published what it received');
  // Each outbox empties once its rows are delivered (by whichever node): the local item goes, recorded
  // as a delivery there (duplicates policies and storage commitment read those), its file free for retention.
  const localQueue = async (n: Node) => (await (await fetch(`http://127.0.0.1:${n.inspectPort}/api/queues`)).json()) as { peer: string; pending: number; dead: number }[];
  await until('outboxes reconciled', async () => (await Promise.all(nodes.map(localQueue))).every((q) => q.every((p) => p.pending === 0 && p.dead === 0)), 20_000);
  const api = await clusterApi(nodes[0]);
  t.deepEqual(api.nodes.map((n: { name: string; alive: boolean }) => [n.name, n.alive]), [['n1', true], ['n2', true], ['n3', true]]);
  t.deepEqual(api.deliveries, { delivered: all.length, duplicates: 0 });
});
