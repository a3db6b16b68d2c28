// Issue 17, storage: local: a node's spool is its own, so its items wait while it is down (the other
// node delivers only its own; /api/cluster counts what waits for its node) and leave when it returns.
import test from 'ava';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { freePort, startStorescp, tempDir } from '../helpers/processes.ts';
import { clusterApi, filesAt, forwardAllRules, startNode, storescu, until } from './nodes.ts';

test("storage local: a dead node's items wait for it, the other node's leave; they leave when it returns", async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const destPort = await freePort();
  const shared = tempDir('nodes-'); // only the layout: with storage local no node reads another's folder
  const rulesDir = forwardAllRules('DEST');
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: destPort, maxAssociations: 1, idleReleaseSeconds: 1, retry: { attempts: 100, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, storage: 'local', leaseSeconds: 2 });
  t.teardown(n1.stop);
  const n2 = await startNode('n2', { pg: pgServer, shared, rulesDir, peers, storage: 'local', leaseSeconds: 2 });
  t.teardown(n2.stop);
  const files = [1, 2].map((i) => writeDataset(join(tempDir(), `n${i}`), { count: 5, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 1024 }));
  const [of1, of2] = await Promise.all(files.map((fs) => Promise.all(fs.map(async (f) => (await readPart10File(f)).sopInstanceUid))));
  // The destination is not up yet: n1's instances wait in the shared queue; n1 dies.
  t.is((await storescu(n1, files[0])).code, 0);
  await until("n1's outbox published", async () => (await clusterApi(n2)).depths.reduce((s: number, d: { pending: number }) => s + d.pending, 0) === 5, 20_000);
  n1.child.kill('SIGKILL');
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST', port: destPort });
  t.teardown(dest.stop);
  t.is((await storescu(n2, files[1])).code, 0);
  await until("n2's own instances delivered", () => of2.every((u) => filesAt(out).has(u)), 60_000, () => n2.output().slice(-3000));
  await until('n1 presumed down and its items counted as waiting for it', async () => {
    const api = await clusterApi(n2);
    return api.nodes.some((n: { name: string; alive: boolean }) => n.name === 'n1' && !n.alive) && api.depths[0]?.waitingForNode === 5;
  }, 30_000);
  t.deepEqual(of1.filter((u) => filesAt(out).has(u)), [], "n2 did not take n1's items (it cannot read n1's spool)");
  // n1 returns (same spool, same port): its items leave.
  const back = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, storage: 'local', leaseSeconds: 2, port: n1.port });
  t.teardown(back.stop);
  await until("n1's instances delivered after its return", () => of1.every((u) => filesAt(out).has(u)), 60_000, () => back.output().slice(-3000));
});
