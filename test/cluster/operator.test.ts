// Issue 17, what an operator does to a cluster's dead letters from one node: `router queue retry` makes
// the shared row pending again (whichever node claims it delivers it), `router queue purge` removes it
// from the cluster queue (no node will deliver it).
import test from 'ava';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { freePort, REPO, run, startStorescp, tempDir } from '../helpers/processes.ts';
import { clusterApi, filesAt, forwardAllRules, startNode, storescu, until } from './nodes.ts';

const router = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);
const dead = async (node: Parameters<typeof clusterApi>[0]) => (await clusterApi(node)).depths.reduce((s: number, d: { dead: number }) => s + d.dead, 0);

test('queue retry on a node revives its shared dead letters; queue purge removes them from the cluster queue', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const destPort = await freePort();
  const shared = tempDir('nodes-');
  const rulesDir = forwardAllRules('DEST');
  // DEST refuses every association for good at first (storescp --refuse): the items become dead letters.
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: destPort, idleReleaseSeconds: 1, retry: { attempts: 1, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const n1 = await startNode('n1', { pg: pgServer, shared, rulesDir, peers, storage: 'shared', leaseSeconds: 2 });
  t.teardown(n1.stop);
  const files = writeDataset(join(tempDir(), 'in'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 1024 });
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  const refusing = await startStorescp(tempDir('refusing-'), { aeTitle: 'DEST', port: destPort, extraArgs: ['--refuse'] });
  t.is((await storescu(n1, files.slice(0, 2))).code, 0);
  await until('two dead letters in the cluster queue', async () => (await dead(n1)) === 2, 30_000, () => n1.output().slice(-3000));
  await refusing.stop();

  // The destination is fixed; the operator retries on the node.
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST', port: destPort });
  t.teardown(dest.stop);
  await until('the dead letters mirrored into the node\'s own queue', async () => /DEST: 0 pending, 2 dead/.test((await router('queue', 'ls', '--config', n1.configFile)).stdout), 30_000);
  // `queue ls` on a node also shows the cluster's shared queue, read from PostgreSQL.
  const listed = await router('queue', 'ls', '--config', n1.configFile);
  t.regex(listed.stdout, /cluster queue \(PostgreSQL, 1 of 1 nodes alive; 0 delivered, 0 duplicates\):\n {2}DEST: 0 pending \(0 being sent\), 2 dead/);
  const json = JSON.parse((await router('queue', 'ls', '--json', '--config', n1.configFile)).stdout);
  t.like(json.cluster.depths[0], { peer: 'DEST', pending: 0, dead: 2 });
  const retried = await router('queue', 'retry', 'DEST', '--config', n1.configFile);
  t.is(retried.code, 0, retried.stderr);
  t.regex(retried.stdout, /^2 items due now$/m);
  await until('both delivered after the retry', () => sops.slice(0, 2).every((u) => filesAt(out).has(u)), 60_000, () => n1.output().slice(-3000));
  t.regex(n1.output(), /dead letters retried by an operator: pending again in the cluster queue/);
  t.is(await dead(n1), 0);

  // A third instance dies too (the destination refusing again); purged, no node delivers it.
  await dest.stop();
  const refusingAgain = await startStorescp(tempDir('refusing-'), { aeTitle: 'DEST', port: destPort, extraArgs: ['--refuse'] });
  t.teardown(refusingAgain.stop);
  t.is((await storescu(n1, files.slice(2))).code, 0);
  await until('the third is a dead letter', async () => (await dead(n1)) === 1, 30_000, () => n1.output().slice(-3000));
  await until('mirrored', async () => /DEST: 0 pending, 1 dead/.test((await router('queue', 'ls', '--config', n1.configFile)).stdout), 30_000);
  const purged = await router('queue', 'purge', 'DEST', '--yes', '--config', n1.configFile);
  t.regex(purged.stdout, /^1 item purged$/m);
  await until('gone from the cluster queue', async () => {
    const api = await clusterApi(n1);
    return api.depths.reduce((s: number, d: { dead: number; pending: number }) => s + d.dead + d.pending, 0) === 0;
  }, 30_000, () => n1.output().slice(-3000));
});
