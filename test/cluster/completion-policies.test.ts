// Issue 17: completion groups on a cluster node, the paths other than "complete and forwarded": a group
// whose whenComplete does not hold drops its held items (nothing sent; the node's outbox lets them go),
// and instances arriving after their group fired follow afterFired (new-instances: sent on their own;
// ignore: dropped). One node on a private PostgreSQL, a DCMTK storescp destination.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { startStorescp, tempDir } from '../helpers/processes.ts';
import { filesAt, startNode, storescu, until } from './nodes.ts';

test('whenComplete not holding drops the held items; late instances follow afterFired (new-instances sent, ignore dropped)', async (t) => {
  const pgServer = await startPostgres();
  t.teardown(pgServer.stop);
  const out = tempDir('dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST' });
  t.teardown(dest.stop);
  const rulesDir = tempDir('rules-');
  writeFileSync(join(rulesDir, 'rules.yaml'), [
    'rules:',
    '  - name: needs-two-series',
    '    when: { attribute: PatientID, equals: TWO }',
    '    trigger: { per: study, quietSeconds: 1, afterFired: ignore }',
    '    whenComplete:',
    '      - seriesCount: { min: 2 }',
    '    then: { forward: [DEST] }',
    '  - name: late-ones',
    '    when: { attribute: PatientID, equals: LATE }',
    '    trigger: { per: study, quietSeconds: 1, afterFired: new-instances }',
    '    then: { forward: [DEST] }',
    '',
  ].join('\n'));
  const peers = [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, retry: { attempts: 20, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }];
  const node = await startNode('n1', { pg: pgServer, shared: tempDir('shared-'), rulesDir, peers });
  t.teardown(node.stop);
  const db = new pg.Client({ connectionString: pgServer.url });
  await db.connect();
  t.teardown(() => db.end());
  const group = async (rule: string) => (await db.query(`SELECT state, instances, late, fired FROM completion_groups WHERE rule = $1`, [rule])).rows[0];
  const states = async (sops: string[]) => (await db.query(`SELECT state, count(*)::int AS n FROM queue_items WHERE sop_uid = ANY($1) GROUP BY state ORDER BY state`, [sops])).rows.map((r) => [r.state, r.n]);
  const uids = (files: string[]) => Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  const localItems = async () => (await (await fetch(`http://127.0.0.1:${node.inspectPort}/api/queues`)).json() as { items: unknown[] }[])[0].items.length;

  // One series only: whenComplete (two series) does not hold.
  const twoStudy = newUid();
  const one = writeDataset(join(tempDir(), 'one'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, patientId: 'TWO', studyInstanceUid: twoStudy });
  t.is((await storescu(node, one)).code, 0);
  await until('the group fired', async () => (await group('needs-two-series'))?.state === 'fired', 20_000, () => node.output().slice(-3000));
  const fired = await group('needs-two-series');
  t.is(fired.fired.outcome, 'conditions-not-met');
  t.is(fired.fired.forwarded, 0);
  t.deepEqual(await states(await uids(one)), [['dropped', 2]]);
  // A late instance of it (afterFired: ignore) is dropped too.
  const lateIgnored = writeDataset(join(tempDir(), 'li'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, patientId: 'TWO', studyInstanceUid: twoStudy });
  t.is((await storescu(node, lateIgnored)).code, 0);
  await until('the late instance counted', async () => (await group('needs-two-series')).late === 1, 20_000, () => node.output().slice(-3000));
  t.deepEqual(await states([...(await uids(one)), ...(await uids(lateIgnored))]), [['dropped', 3]]);

  // Forwarded, then a late instance (afterFired: new-instances) goes on its own.
  const lateStudy = newUid();
  const first = writeDataset(join(tempDir(), 'first'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, patientId: 'LATE', studyInstanceUid: lateStudy });
  t.is((await storescu(node, first)).code, 0);
  const firstUids = await uids(first);
  await until('the first two delivered', () => firstUids.every((u) => filesAt(out).has(u)), 30_000, () => node.output().slice(-3000));
  t.is((await group('late-ones')).fired.outcome, 'forwarded');
  const late = writeDataset(join(tempDir(), 'late'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 256, patientId: 'LATE', studyInstanceUid: lateStudy });
  t.is((await storescu(node, late)).code, 0);
  const [lateUid] = await uids(late);
  await until('the late instance delivered on its own', () => filesAt(out).has(lateUid), 30_000, () => node.output().slice(-3000));
  t.is((await group('late-ones')).state, 'fired', 'the group stays fired');

  // Nothing of the dropped group reached the destination, and the node's outbox let its items go.
  for (const u of [...(await uids(one)), ...(await uids(lateIgnored))]) t.false(filesAt(out).has(u));
  await until('no local item left', async () => (await localItems()) === 0, 20_000, () => node.output().slice(-3000));
});
