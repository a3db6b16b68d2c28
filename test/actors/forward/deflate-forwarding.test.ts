// Forwarding Deflated Explicit VR LE in-process against scripted SCPs: a Deflated instance reaches a
// peer that takes only Implicit VR LE (inflated and converted), a native one goes out Deflated to a
// peer configured for it, and a stored Deflated file that no longer inflates is a dead letter with
// its reason, at once, before any byte of it is sent.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { part10Header } from '../../../protocol/part10.ts';
import { TransferSyntaxConverter } from '../../../protocol/ts-convert.ts';
import { datasetOf, encodeDataset, encodingOf, instanceElements, makeInstance, newUid, SOP, TS } from '../../helpers/dicom-files.ts';
import { eventually, routerWith, storeFile } from '../../helpers/in-process-router.ts';
import { freePort, tempDir } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

const QUICK_RETRY = { attempts: 3, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.1, jitter: 0 };
const ALL = 'rules:\n  - name: all\n    then: { forward: [PEER] }\n';

/** A CT instance as Deflated Explicit VR LE: its path and its Explicit VR LE dataset. */
function deflatedInstance(dir: string): { path: string; ele: Buffer; sopInstanceUid: string } {
  const sopInstanceUid = newUid();
  const ele = encodeDataset(
    instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid, studyInstanceUid: newUid(), seriesInstanceUid: newUid(), withPrivateTags: true, pixelBytes: 65536 }),
    encodingOf(TS.explicitLE),
  );
  let deflated = deflateRawSync(ele);
  if (deflated.length % 2) deflated = Buffer.concat([deflated, Buffer.alloc(1)]);
  const header = part10Header({ sopClassUid: SOP.ct, sopInstanceUid, transferSyntaxUid: TS.deflatedLE, implementationClassUid: '2.25.1', implementationVersionName: 'TEST', sourceAeTitle: 'TESTGEN' });
  const path = join(dir, `${sopInstanceUid}.dcm`);
  writeFileSync(path, Buffer.concat([header, deflated]));
  return { path, ele, sopInstanceUid };
}

async function sendFile(port: number, path: string): Promise<void> {
  const outcome = await storeFile(port, path);
  if (outcome.status !== 0) throw new Error(`router answered ${outcome.status} ${outcome.errorComment ?? outcome.failure}`);
}

function convert(bytes: Uint8Array, from: string, to: string): Buffer {
  const c = new TransferSyntaxConverter(from, to);
  return Buffer.concat([...c.push(bytes), ...c.end()]);
}

test('a Deflated instance reaches an Implicit-VR-LE-only peer, inflated and converted', async (t) => {
  const scp = await scriptedScp({ transferSyntax: TS.implicitLE });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }], ALL);
  t.teardown(() => r.stop(0));
  const src = deflatedInstance(r.dir);
  await sendFile(r.port, src.path);
  await eventually(t, 'delivered', () => r.queue.depth('PEER').pending === 0 && scp.stores.length === 1);
  t.is(r.queue.depth('PEER').dead, 0);
  t.true(scp.stores[0].dataset.equals(convert(src.ele, TS.explicitLE, TS.implicitLE)), 'the peer got the inflated dataset in Implicit VR LE');
});

test('a native instance goes out Deflated to a peer whose transferSyntaxes put Deflated first', async (t) => {
  const scp = await scriptedScp({ transferSyntax: TS.deflatedLE });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY, transferSyntaxes: [TS.deflatedLE, TS.explicitLE] }], ALL);
  t.teardown(() => r.stop(0));
  const path = join(r.dir, 'ile.dcm');
  writeFileSync(path, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.implicitLE, withPrivateTags: true }));
  await sendFile(r.port, path);
  await eventually(t, 'delivered', () => r.queue.depth('PEER').pending === 0 && scp.stores.length === 1);
  const got = scp.stores[0].dataset;
  t.is(got.length % 2, 0, 'an even-length deflated stream');
  t.true(inflateRawSync(got).equals(convert(datasetOf(readFileSync(path)), TS.implicitLE, TS.explicitLE)), 'raw Deflate of the Explicit VR LE dataset');
});

test('a stored Deflated instance cut short is a dead letter at once, with the reason, and nothing is sent', async (t) => {
  // First run: the peer is down, so the item waits in the durable queue.
  const storageDir = join(tempDir(), 'data');
  const down = await freePort();
  const first = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: down, retry: { ...QUICK_RETRY, attempts: 50 } }], ALL, { storageDir });
  const src = deflatedInstance(first.dir);
  await sendFile(first.port, src.path);
  const [item] = first.queue.list('PEER');
  const stored = join(first.spool.dir, item.path);
  await first.stop(0);
  // The stored file is cut short (its deflate stream has no final block); the next run finds the peer up.
  const file = await readPart10File(stored);
  writeFileSync(stored, readFileSync(stored).subarray(0, file.datasetOffset + (file.datasetLength >> 1)));
  const scp = await scriptedScp({ transferSyntax: TS.implicitLE });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: scp.port, retry: { ...QUICK_RETRY, attempts: 50 } }], ALL, { storageDir });
  t.teardown(() => r.stop(0));
  await eventually(t, 'a dead letter', () => r.queue.depth('PEER').dead === 1);
  const dead = r.queue.list('PEER')[0];
  t.regex(dead.deadReason ?? '', /^cannot prepare the instance: deflated dataset ends before its final block/);
  t.is(dead.attempts, 1, 'not retried: the file will not inflate next time either');
  t.is(scp.stores.length, 0, 'no C-STORE was started');
});

test('a stored file that fails half-way through its conversion aborts the association at once: a dead letter with the reason, and the next item goes out', async (t) => {
  // A long DIMSE timeout: the test would time out if the router waited for the peer to answer a half-sent message.
  const storageDir = join(tempDir(), 'data');
  const down = await freePort();
  const slow = { ...QUICK_RETRY, attempts: 50 };
  const first = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: down, retry: slow, timeouts: { connectSeconds: 5, dimseSeconds: 600 } }], ALL, { storageDir });
  const broken = join(first.dir, 'broken.dcm');
  const fine = join(first.dir, 'fine.dcm');
  writeFileSync(broken, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.implicitLE, pixelBytes: 262_144 }));
  writeFileSync(fine, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.implicitLE }));
  await sendFile(first.port, broken);
  await sendFile(first.port, fine);
  const [brokenItem] = first.queue.list('PEER');
  const stored = join(first.spool.dir, brokenItem.path);
  await first.stop(0);
  // The stored file loses its last bytes: Pixel Data's value is cut, which the converter finds at the end.
  writeFileSync(stored, readFileSync(stored).subarray(0, readFileSync(stored).length - 1001));
  // The peer takes only Explicit VR LE, so the Implicit VR LE file is converted as it streams.
  const scp = await scriptedScp({ transferSyntax: TS.explicitLE });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: scp.port, retry: slow, timeouts: { connectSeconds: 5, dimseSeconds: 600 }, transferSyntaxes: [TS.explicitLE] }], ALL, { storageDir });
  t.teardown(() => r.stop(0));
  await eventually(t, 'one dead letter and one delivery', () => r.queue.depth('PEER').dead === 1 && r.queue.depth('PEER').pending === 0);
  const dead = r.queue.list('PEER')[0];
  t.is(dead.sopInstanceUid, brokenItem.sopInstanceUid);
  t.regex(dead.deadReason ?? '', /^dataset stream failed: /);
  t.is(dead.attempts, 1, 'not retried: the file will not read better next time');
  t.is(scp.stores.length, 1, 'the second instance was delivered on a new association');
});
