// Issue 17: a node started while PostgreSQL is down starts anyway, degraded: it acknowledges what it
// receives (the outbox is its own durable queue) and joins the cluster once the database answers, then
// forwards the backlog.
import test from 'ava';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { startStorescp, tempDir, waitForOutput } from '../helpers/processes.ts';
import { filesAt, forwardAllRules, startNode, storescu, until } from './nodes.ts';

test('a node started while PostgreSQL is down ingests, degraded, and joins and forwards once it is back', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  await pgServer.stop();
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST' });
  t.teardown(dest.stop);
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, retry: { attempts: 100, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const node = await startNode('n1', { pg: pgServer, shared: tempDir('nodes-'), rulesDir: forwardAllRules('DEST'), peers });
  t.teardown(node.stop);
  t.regex(node.output(), /cluster database unreachable: node degraded/);
  t.notRegex(node.output(), /"msg":"cluster node started"/);
  const files = writeDataset(join(tempDir(), 's'), { count: 6, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 1024 });
  const sent = await storescu(node, files);
  t.is(sent.code, 0, `acknowledged while the database is down: ${sent.stderr}`);
  t.is(filesAt(out).size, 0, 'nothing forwarded before the node joined');
  await pgServer.restart();
  await waitForOutput(node, '"msg":"cluster node started"', 30_000);
  const uids = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  await until('the backlog forwarded', () => uids.every((u) => filesAt(out).has(u)), 60_000, () => node.output().slice(-3000));
});
