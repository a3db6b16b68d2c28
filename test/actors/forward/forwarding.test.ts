// Forwarding in-process against a scripted SCP: what the queue does with each class of C-STORE
// status, failover, and rules hot-reloaded while traffic flows.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import { makeInstance, SOP, TS } from '../../helpers/dicom-files.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';
const QUICK_RETRY = { attempts: 3, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.1, jitter: 0 };

test('status classes: 0000/B000 delivered, A700 retried then delivered, A900/C000/0122/0124 dead at once', async (t) => {
  // The patient ID says what the SCP answers; A700 only the first time.
  const seen = new Map<string, number>();
  const scp = await scriptedScp({
    status: (command, dataset) => {
      const n = (seen.get(command.AffectedSOPInstanceUID!) ?? 0) + 1;
      seen.set(command.AffectedSOPInstanceUID!, n);
      const code = /STATUS_([0-9A-F]{4})/.exec(dataset.toString('latin1'))![1];
      if (code === 'A700' && n > 1) return 0;
      return parseInt(code, 16);
    },
  });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'SCRIPTED', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }], 'rules:\n  - name: all\n    then: { forward: [SCRIPTED] }\n');
  t.teardown(() => r.stop(0));
  const codes = ['0000', 'B000', 'A700', 'A900', 'C000', '0122', '0124'];
  const uids = await send(r.port, r.dir, codes.map((c) => ({ patientId: `STATUS_${c}` })));
  await eventually(t, 'the queue settles', () => r.queue.depth('SCRIPTED').pending === 0 && scp.stores.length >= 8);
  const byCode = new Map(codes.map((c, i) => [c, uids[i]]));
  const items = r.queue.list('SCRIPTED');
  const dead = new Map(items.filter((i) => i.state === 'dead').map((i) => [i.sopInstanceUid, i]));
  for (const code of ['0000', 'B000', 'A700']) t.false(dead.has(byCode.get(code)!), `${code} should be delivered`);
  t.is(r.queue.outstanding(byCode.get('0000')!), 0);
  t.is(seen.get(byCode.get('A700')!), 2, 'A700 was retried once and then delivered');
  for (const code of ['A900', 'C000', '0122', '0124']) {
    const item = dead.get(byCode.get(code)!);
    t.truthy(item, `${code} should be a dead letter`);
    t.is(item?.attempts, 1, `${code} is not retried`);
    t.is(item?.lastStatus, parseInt(code, 16));
    t.is(seen.get(byCode.get(code)!), 1);
  }
});

test('a dead letter at the primary goes to the failover peer', async (t) => {
  const primary = await scriptedScp({ status: () => 0xc000 });
  const backup = await scriptedScp();
  t.teardown(primary.close);
  t.teardown(backup.close);
  const r = await routerWith(
    [
      { aeTitle: 'PRIMARY', host: '127.0.0.1', port: primary.port, retry: QUICK_RETRY },
      { aeTitle: 'BACKUP', host: '127.0.0.1', port: backup.port, retry: QUICK_RETRY },
    ],
    'rules:\n  - name: all\n    then: { forward: [{ peer: PRIMARY, failover: BACKUP }] }\n',
  );
  t.teardown(() => r.stop(0));
  const [uid] = await send(r.port, r.dir, [{}]);
  await eventually(t, 'delivered to the backup', () => backup.stores.length === 1);
  t.is(backup.stores[0].command.AffectedSOPInstanceUID, uid);
  await eventually(t, 'the backup item is confirmed', () => r.queue.depth('BACKUP').pending === 0 && r.queue.outstanding(uid) === 1);
  t.is(r.queue.depth('PRIMARY').dead, 1, 'the primary keeps its dead letter for the operator');
});

test('rules edited while traffic flows: the next association follows them; an invalid edit is refused and the old rules stay', async (t) => {
  const a = await scriptedScp();
  const b = await scriptedScp();
  t.teardown(a.close);
  t.teardown(b.close);
  const r = await routerWith(
    [
      { aeTitle: 'A', host: '127.0.0.1', port: a.port, retry: QUICK_RETRY },
      { aeTitle: 'B', host: '127.0.0.1', port: b.port, retry: QUICK_RETRY },
    ],
    'rules:\n  - name: to-a\n    then: { forward: [A] }\n',
  );
  t.teardown(() => r.stop(0));
  await send(r.port, r.dir, [{}]);
  await eventually(t, 'first instance at A', () => a.stores.length === 1);

  writeFileSync(join(r.rulesDir, 'rules.yaml'), 'rules:\n  - name: to-b\n    then: { forward: [B] }\n');
  await eventually(t, 'the new rules are in force', () => r.rules.current.rules[0]?.name === 'to-b');
  await send(r.port, r.dir, [{}]);
  await eventually(t, 'second instance at B', () => b.stores.length === 1);
  t.is(a.stores.length, 1);

  writeFileSync(join(r.rulesDir, 'rules.yaml'), 'rules:\n  - name: broken\n    then: { forward: [NO_SUCH_PEER] }\n');
  await eventually(t, 'the invalid edit is refused', () => r.rules.lastError !== undefined);
  t.regex(r.rules.lastError!, /rules\.yaml:\d+:\d+: .*NO_SUCH_PEER/);
  t.is(r.rules.current.rules[0].name, 'to-b');
  await send(r.port, r.dir, [{}]);
  await eventually(t, 'third instance still goes to B', () => b.stores.length === 2);
});

test('a rule that rejects answers the C-STORE with its status, and nothing is stored', async (t) => {
  const r = await routerWith([], "rules:\n  - name: no-tests\n    when: { attribute: PatientID, wildcard: 'TEST*' }\n    then: { reject: { status: 'A900', comment: 'test patients are not accepted' } }\n");
  t.teardown(() => r.stop(0));
  await t.throwsAsync(send(r.port, r.dir, [{ patientId: 'TEST42' }]), { message: /router answered 43264 test patients are not accepted/ });
  t.is(r.spool.count(), 0);
  await send(r.port, r.dir, [{ patientId: 'P1' }]);
  t.is(r.spool.count(), 1);
});

test('instances of one series leave for a peer in the order received, even across a retry', async (t) => {
  // The second instance is refused once with A700: it backs off, and the third must wait for it.
  let refused = false;
  const scp = await scriptedScp({
    status: (command, dataset) => {
      if (!refused && dataset.includes(Buffer.from('ORDER_2'))) {
        refused = true;
        return 0xa700;
      }
      return 0;
    },
  });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'ORDERED', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }], 'rules:\n  - name: all\n    then: { forward: [ORDERED] }\n');
  t.teardown(() => r.stop(0));
  const dir = join(r.dir, 'series');
  mkdirSync(dir);
  const series = '1.2.826.0.1.3680043.2.1125.9.1';
  const files = [1, 2, 3, 4].map((n) => {
    const path = join(dir, `${n}.dcm`);
    writeFileSync(path, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, seriesInstanceUid: series, studyInstanceUid: '1.2.826.0.1.3680043.2.1125.9', patientId: `ORDER_${n}` }));
    return path;
  });
  const parsed = await Promise.all(files.map((f) => readPart10File(f)));
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port: r.port, callingAeTitle: 'MODALITY', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }], logger: silent,
  });
  for (const f of parsed) t.is((await scu.store(f)).status, 0);
  await scu.release();
  await eventually(t, 'all four delivered', () => r.queue.depth('ORDERED').pending === 0 && scp.stores.filter((s) => s.dataset.length > 0).length >= 5);
  const delivered = scp.stores.map((s) => s.command.AffectedSOPInstanceUID);
  const expected = parsed.map((p) => p.sopInstanceUid);
  // Sent: 1, 2 (A700), then 2 again, 3, 4 — never 3 before the retried 2.
  t.deepEqual(delivered, [expected[0], expected[1], expected[1], expected[2], expected[3]]);
});

test('a peer with maxAssociations 3 gets parallel associations, and each series still arrives in order', async (t) => {
  const scp = await scriptedScp({ delayMs: 20 });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'WIDE', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY, maxAssociations: 3 }], 'rules:\n  - name: all\n    then: { forward: [WIDE] }\n');
  t.teardown(() => r.stop(0));
  const series = ['1.2.826.0.1.3680043.2.1125.7.1', '1.2.826.0.1.3680043.2.1125.7.2', '1.2.826.0.1.3680043.2.1125.7.3'];
  const sent: string[][] = [];
  for (const s of series) sent.push(await send(r.port, r.dir, [1, 2, 3, 4].map(() => ({ seriesInstanceUid: s, studyInstanceUid: '1.2.826.0.1.3680043.2.1125.7' }))));
  await eventually(t, 'all twelve delivered', () => scp.stores.length === 12 && r.queue.depth('WIDE').pending === 0);
  t.true(scp.maxConcurrent > 1, `only ${scp.maxConcurrent} association at a time`);
  t.true(scp.maxConcurrent <= 3);
  const order = scp.stores.map((s) => s.command.AffectedSOPInstanceUID!);
  for (const uids of sent) t.deepEqual(order.filter((u) => uids.includes(u)), uids, 'series order kept');
});
