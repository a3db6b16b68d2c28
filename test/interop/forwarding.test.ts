// Store-and-forward against real peers: DCMTK storescu → router → DCMTK storescp destinations,
// with modifications, outages, an Implicit-LE-only peer, SIGKILL mid-forward, and rule edits.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { datasetOf, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { freePort, REPO, run, startRouter, startStorescp, tempDir, waitForOutput } from '../helpers/processes.ts';

const QUICK_RETRY = { attempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 };

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function eventually(t: ExecutionContext, what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for: ${what}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** dcmdump of a file's dataset, one line per element, without the file meta group. */
async function dump(file: string): Promise<string[]> {
  const r = await run('dcmdump', ['-q', '+L', file]);
  return r.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('(0002,') && !l.startsWith('#'));
}

/** Deliveries the router has confirmed (C-STORE-RSP received from the destination): a file a storescp
 *  is still writing is not yet counted, unlike a file in its folder. */
const delivered = (router: { output(): string }) => router.output().match(/"msg":"delivered"/g)?.length ?? 0;

function rulesDir(yaml: string): string {
  const dir = tempDir('rules-');
  writeFileSync(join(dir, 'rules.yaml'), yaml);
  return dir;
}

const storescu = (port: number, files: string[], flag = '-xe') =>
  run('storescu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', flag, '127.0.0.1', String(port), ...files]);

test('storescu → router → two storescp: each receives every instance, equal but for exactly the modified attributes', async (t) => {
  const src = tempDir();
  const files = writeDataset(join(src, 'ct'), { count: 4, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, patientId: '000123' });
  for (const f of files) t.is((await run('dcmconv', ['+e', f, f])).code, 0); // as storescu will send them
  const [a, b] = [tempDir(), tempDir()];
  const scpA = await startStorescp(a, { aeTitle: 'PACS_A' });
  const scpB = await startStorescp(b, { aeTitle: 'PACS_B' });
  t.teardown(scpA.stop);
  t.teardown(scpB.stop);
  const router = await startRouter({
    peers: [
      { aeTitle: 'PACS_A', host: '127.0.0.1', port: scpA.port, retry: QUICK_RETRY },
      { aeTitle: 'PACS_B', host: '127.0.0.1', port: scpB.port, retry: QUICK_RETRY },
    ],
    rulesDir: rulesDir(`rules:
  - name: to-a-as-is
    continue: true
    when: { attribute: Modality, equals: CT }
    then: { forward: [PACS_A] }
  - name: to-b-modified
    when: { callingAe: MODALITY }
    then:
      forward: [PACS_B]
      modify:
        - set: { attribute: InstitutionName, value: General Hospital }
        - replace: { attribute: PatientID, regex: '^0+', with: '' }
        - remove: { attribute: AccessionNumber }
`),
  });
  t.teardown(router.stop);
  const sent = await storescu(router.port, files);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  await eventually(t, 'both destinations have all instances', () => delivered(router) === 8);

  const bySop = async (dir: string) => new Map(await Promise.all(filesUnder(dir).map(async (f) => [(await readPart10File(f)).sopInstanceUid, f] as const)));
  const [atA, atB] = [await bySop(a), await bySop(b)];
  for (const f of files) {
    const sop = (await readPart10File(f)).sopInstanceUid;
    // A: byte-identical dataset.
    t.true(Buffer.from(datasetOf(readFileSync(atA.get(sop)!))).equals(Buffer.from(datasetOf(readFileSync(f)))), `${f} differs at PACS_A`);
    // B: the same elements except exactly the three modified ones.
    const [orig, got] = [await dump(f), await dump(atB.get(sop)!)];
    const removed = orig.filter((l) => !got.includes(l));
    const added = got.filter((l) => !orig.includes(l));
    t.deepEqual(removed.map((l) => l.slice(0, 11)).sort(), ['(0008,0050)', '(0008,0080)', '(0010,0020)'].filter((tag) => orig.some((l) => l.startsWith(tag))).sort());
    t.deepEqual(added.map((l) => l.trim().slice(0, 11)).sort(), ['(0008,0080)', '(0010,0020)']);
    t.true(got.some((l) => l.startsWith('(0008,0080) LO [General Hospital]')));
    t.true(got.some((l) => l.startsWith('(0010,0020) LO [123]')));
  }
});

test('a destination that is down: queued with backoff, everything arrives once it is up', async (t) => {
  const src = tempDir();
  const files = writeDataset(join(src, 'mr'), { count: 5, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, modality: 'MR' });
  const port = await freePort();
  const router = await startRouter({
    peers: [{ aeTitle: 'LATE', host: '127.0.0.1', port, retry: QUICK_RETRY }],
    rulesDir: rulesDir('rules:\n  - name: all-to-late\n    then: { forward: [LATE] }\n'),
  });
  t.teardown(router.stop);
  const sent = await storescu(router.port, files);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  // Nobody listens yet: the peer machine backs off and retries.
  await waitForOutput(router, 'ECONNREFUSED', 10_000);
  await new Promise((r) => setTimeout(r, 1500));
  const out = tempDir();
  const scp = await startStorescp(out, { aeTitle: 'LATE', port });
  t.teardown(scp.stop);
  // On a loaded machine five refusals may come before storescp is up: the circuit then opens for 60 s
  // and the next attempt comes after it; either way everything must arrive.
  await eventually(t, 'all five delivered after the peer came up', () => delivered(router) === 5, 150_000);
  t.is(filesUnder(out).length, 5);
  const failures = (router.output().match(/association to peer failed|backing off|ECONNREFUSED/g) ?? []).length;
  t.true(failures >= 2, 'the retry log shows repeated attempts with backoff');
});

/** A router forwarding everything to a DCMTK storescp that accepts only Implicit VR LE (+xi). */
async function routerToImplicitOnlyPeer(t: ExecutionContext) {
  const out = tempDir();
  const scp = await startStorescp(out, { aeTitle: 'OLD_PACS', extraArgs: ['+xi'] });
  t.teardown(scp.stop);
  const router = await startRouter({
    peers: [{ aeTitle: 'OLD_PACS', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }],
    rulesDir: rulesDir('rules:\n  - name: all\n    then: { forward: [OLD_PACS] }\n'),
  });
  t.teardown(router.stop);
  return { out, router };
}

test('a peer that takes only Implicit VR LE gets Explicit LE and Explicit BE input converted', async (t) => {
  const src = tempDir();
  const ele = writeDataset(join(src, 'ele'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true });
  const ebe = writeDataset(join(src, 'ebe'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitBE });
  const { out, router } = await routerToImplicitOnlyPeer(t);
  t.is((await storescu(router.port, ele, '-xe')).code, 0);
  t.is((await storescu(router.port, ebe, '-xb')).code, 0);
  await eventually(t, 'four instances at the Implicit-LE-only peer', () => delivered(router) === 4);
  for (const f of [...ele, ...ebe]) {
    const sop = (await readPart10File(f)).sopInstanceUid;
    const got = filesUnder(out).find((g) => g.endsWith(sop))!;
    t.is((await readPart10File(got)).transferSyntaxUid, TS.implicitLE);
    // Same values as DCMTK's own conversion of the original to Implicit LE.
    const ref = join(src, `${sop}.ref.dcm`);
    t.is((await run('dcmconv', ['+ti', f, ref])).code, 0);
    const norm = (lines: string[]) => lines.map((l) => l.replace(/#.*$/, '').trim()).filter((l) => !/^\(fffe,e0[0d]d\)/.test(l));
    t.deepEqual(norm(await dump(got)), norm(await dump(ref)));
  }
});

test('SIGKILL mid-forward and restart: every acknowledged instance reaches the destination', async (t) => {
  const src = tempDir();
  writeDataset(join(src, 'ct'), { count: 60, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 65536 });
  const out = tempDir();
  const scp = await startStorescp(out, { aeTitle: 'DEST' });
  t.teardown(scp.stop);
  const config = {
    peers: [{ aeTitle: 'DEST', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY }],
    rulesDir: rulesDir('rules:\n  - name: all\n    then: { forward: [DEST] }\n'),
  };
  const router = await startRouter(config);
  const sender = run(process.execPath, [join(REPO, 'scripts/router.ts'), 'send', `DICOM_ROUTER@127.0.0.1:${router.port}`, src]);
  // Kill once forwarding is well under way (some delivered, more acknowledged and still queued).
  await eventually(t, 'ten deliveries', () => (router.output().match(/"msg":"delivered"/g)?.length ?? 0) >= 10);
  router.child.kill('SIGKILL');
  const result = await sender;
  const acknowledged = result.stdout.split('\n').filter((l) => /^OK .*0x0000/.test(l)).map((l) => l.trim().split(/\s+/).at(-1)!);
  t.true(acknowledged.length > 0);
  const again = await startRouter({ ...config, dataDir: router.dataDir, port: router.port });
  t.teardown(again.stop);
  const wanted = await Promise.all(acknowledged.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  // storescp names each file <modality>.<SOP Instance UID>; reading a file it is still writing could fail.
  const received = async () => new Set(filesUnder(out).map((f) => basename(f).replace(/^[A-Z]+\./, '')));
  await eventually(t, 'every acknowledged instance delivered after the restart', async () => {
    const got = await received();
    return wanted.every((s) => got.has(s));
  });
  // Duplicates: instances the killed router had sent but not yet recorded as delivered go out again.
  // Counted from the logs (a lower bound: log lines of the last moment before SIGKILL may be lost).
  const deliveredBy = (out: string) => new Set([...out.matchAll(/"sopInstanceUid":"([\d.]+)"[^\n]*"msg":"delivered"/g)].map((m) => m[1]));
  const before = deliveredBy(router.output());
  const twice = [...deliveredBy(again.output())].filter((uid) => before.has(uid)).length;
  t.log(`${acknowledged.length} acknowledged before SIGKILL, ${(await received()).size} distinct instances at the destination, at least ${twice} delivered twice`);
});

test('a compressed (JPEG Baseline) input is decompressed for a peer that takes only Implicit VR LE', async (t) => {
  const src = tempDir();
  const [jpeg] = writeDataset(join(src, 'jpeg'), { count: 1, sopClassUid: SOP.secondaryCapture, transferSyntaxUid: TS.jpegBaseline, encapsulatedJpeg: true, modality: 'OT' });
  const { out, router } = await routerToImplicitOnlyPeer(t);
  const sent = await storescu(router.port, [jpeg], '-xy');
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  await eventually(t, 'the decompressed instance arrives', () => delivered(router) === 1);
  const [got] = filesUnder(out);
  t.is((await readPart10File(got)).transferSyntaxUid, TS.implicitLE);
  // DCMTK's own decompression of the original, to Implicit LE: the same pixels and attributes.
  const ref = join(src, 'ref.dcm');
  t.is((await run('dcmdjpeg', ['+ti', jpeg, ref])).code, 0);
  const pixels = async (f: string) => (await run('dcmdump', ['-q', '+P', '7fe0,0010', '+L', f])).stdout.replace(/#.*$/gm, '').trim();
  t.is(await pixels(got), await pixels(ref));
  const attrs = async (f: string) => (await dump(f)).filter((l) => /^\((0028|0008,0016|0008,0018|0010,0020)/.test(l)).map((l) => l.replace(/#.*$/, '').trim());
  const [mine, theirs] = [await attrs(got), await attrs(ref)];
  t.true(mine.some((l) => l.startsWith('(0028,2110) CS [01]')), 'marked as lossy compressed once');
  t.deepEqual(mine.filter((l) => !l.startsWith('(0028,2110)') && !l.startsWith('(0028,2114)')), theirs.filter((l) => !l.startsWith('(0028,2110)') && !l.startsWith('(0028,2114)')));
});
