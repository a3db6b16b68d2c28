// Receiving Deflated Explicit VR LE: the dataset is inflated as it arrives and walked like any
// other, so an instance whose deflate stream is cut short or corrupt is refused (0xC000 class),
// never acknowledged, and one with more compressed bytes than ingest keeps is indexed and forwarded.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { part10Header } from '../../../protocol/part10.ts';
import { encodeDataset, encodingOf, instanceElements, newUid, SOP, TS } from '../../helpers/dicom-files.ts';
import { eventually, routerWith, storeFile } from '../../helpers/in-process-router.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

const QUICK_RETRY = { attempts: 3, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.1, jitter: 0 };
const ALL = 'rules:\n  - name: all\n    then: { forward: [PEER] }\n';

function deflatedFile(dir: string, sopInstanceUid: string, deflated: Buffer): string {
  const header = part10Header({ sopClassUid: SOP.ct, sopInstanceUid, transferSyntaxUid: TS.deflatedLE, implementationClassUid: '2.25.1', implementationVersionName: 'TEST', sourceAeTitle: 'TESTGEN' });
  const path = join(dir, `${sopInstanceUid}-${deflated.length}.dcm`);
  writeFileSync(path, Buffer.concat([header, deflated, deflated.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]));
  return path;
}

/** A Deflated instance whose compressed dataset is `pixelBytes` of noise, far past what ingest keeps in memory. */
function largeDeflatedInstance(dir: string, pixelBytes: number): { path: string; ele: Buffer; sopInstanceUid: string } {
  const sopInstanceUid = newUid();
  const elements = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid, studyInstanceUid: newUid(), seriesInstanceUid: newUid(), pixelBytes: 2 });
  const pixels = elements.at(-1)!;
  let seed = 7;
  const noise = Buffer.alloc(pixelBytes);
  for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), i);
  pixels.value = noise;
  const ele = encodeDataset(elements, encodingOf(TS.explicitLE));
  return { path: deflatedFile(dir, sopInstanceUid, deflateRawSync(ele, { level: 1 })), ele, sopInstanceUid };
}

test('a Deflated instance larger than the kept header bound is received, indexed and forwarded', async (t) => {
  const scp = await scriptedScp({ transferSyntax: TS.explicitLE });
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PEER', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }], ALL);
  t.teardown(() => r.stop(0));
  const src = largeDeflatedInstance(r.dir, 24 * 1024 * 1024);
  t.true((await readPart10File(src.path)).datasetLength > 16 * 1024 * 1024, 'more compressed bytes than ingest keeps');
  t.is((await storeFile(r.port, src.path)).status, 0);
  t.is(r.spool.get(src.sopInstanceUid)?.patientId, 'PID0001', 'indexed from the inflated header');
  await eventually(t, 'delivered', () => r.queue.depth('PEER').pending === 0 && scp.stores.length === 1, 60_000);
  t.true(scp.stores[0].dataset.equals(src.ele));
});

test('a Deflated instance whose stream is cut short, corrupt, or not Deflate is refused and nothing is stored', async (t) => {
  const r = await routerWith([], 'rules: []\n');
  t.teardown(() => r.stop(0));
  const ele = (uid: string) => encodeDataset(
    instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid: uid, studyInstanceUid: newUid(), seriesInstanceUid: newUid(), pixelBytes: 200_000 }),
    encodingOf(TS.explicitLE),
  );
  const cases: [string, (uid: string) => Buffer][] = [
    // The header inflates and parses; only the end of the stream is missing.
    ['cut short', (uid) => { const d = deflateRawSync(ele(uid)); return d.subarray(0, d.length - 200); }],
    ['corrupt', (uid) => { const d = deflateRawSync(ele(uid)); d.fill(0x5a, d.length >> 1, (d.length >> 1) + 64); return d; }],
    ['not Deflate', (uid) => ele(uid)],
  ];
  for (const [what, make] of cases) {
    const uid = newUid();
    const outcome = await storeFile(r.port, deflatedFile(r.dir, uid, make(uid)));
    t.true(outcome.status !== undefined && outcome.status >= 0xa900, `${what}: refused with a failure status, got ${outcome.status}`);
    t.regex(outcome.errorComment ?? '', /deflated dataset does not inflate|dataset incomplete|unparseable/, what);
    t.is(r.spool.get(uid), undefined, `${what}: nothing stored`);
  }
  // The association still works: a good one right after is stored.
  const uid = newUid();
  t.is((await storeFile(r.port, deflatedFile(r.dir, uid, deflateRawSync(ele(uid))))).status, 0);
  t.truthy(r.spool.get(uid));
});
