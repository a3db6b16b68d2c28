// Deflated Explicit VR LE through the router against real peers (issue 12): PixelMed's storage SCU
// and DCMTK's storescu send deflated; DCMTK storescp destinations that take only Implicit VR LE
// (+xi) or only Explicit VR LE (a config-file profile) get every instance, values and pixels equal;
// a storescp that prefers Deflated gets it deflated by the router when the peer is configured so.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { datasetOf, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { nativePixelData } from '../helpers/pixel-images.ts';
import { DCMTK_ENV, freePort, run, startProcess, startRouter, startStorescp, tempDir, waitForPort } from '../helpers/processes.ts';

const QUICK_RETRY = { attempts: 20, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 };
const PIXELMED = '/usr/share/java/pixelmed.jar';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function eventually(t: ExecutionContext, what: string, check: () => boolean, output: () => string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for: ${what}\n${output().slice(-4000)}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const delivered = (router: { output(): string }) => router.output().match(/"msg":"delivered"/g)?.length ?? 0;

function rulesDir(yaml: string): string {
  const dir = tempDir('rules-');
  writeFileSync(join(dir, 'rules.yaml'), yaml);
  return dir;
}

/** A storescp that accepts Explicit VR LE only (and Verification): a DCMTK config-file profile. */
async function startExplicitOnlyStorescp(dir: string, aeTitle: string) {
  const cfg = join(tempDir('scp-cfg-'), 'storescp.cfg');
  writeFileSync(cfg, [
    '[[TransferSyntaxes]]', '[ExplicitLittleOnly]', 'TransferSyntax1 = 1.2.840.10008.1.2.1',
    '[[PresentationContexts]]', '[ExplicitLittle]',
    'PresentationContext1 = 1.2.840.10008.1.1\\ExplicitLittleOnly',
    `PresentationContext2 = ${SOP.ct}\\ExplicitLittleOnly`,
    `PresentationContext3 = ${SOP.mr}\\ExplicitLittleOnly`,
    '[[Profiles]]', '[ExplicitLittle]', 'PresentationContexts = ExplicitLittle', '',
  ].join('\n'));
  const port = await freePort();
  const proc = startProcess('storescp', ['--aetitle', aeTitle, '--config-file', cfg, 'ExplicitLittle', '--output-directory', dir, String(port)]);
  try {
    await waitForPort(port);
  } catch (err) {
    await proc.stop();
    throw new Error(`storescp (Explicit LE only) did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return { ...proc, port, aeTitle };
}

/**
 * dcmdump of a file's dataset for comparison: no file meta (group 0002), no group lengths, and
 * without what depends on the transfer syntax (the "# length, VM" comments, sequence/item lengths
 * and delimiters, which differ between defined and undefined length).
 */
async function dump(file: string): Promise<string[]> {
  const r = await run('dcmdump', ['-q', '+L', file]);
  if (r.code !== 0) throw new Error(`dcmdump ${file} (${r.code}): ${r.stderr}${r.stdout.slice(-2000)}`);
  return r.stdout.split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trimEnd())
    .filter((l) => l.trim() && !l.trim().startsWith('(0002,') && !/^\s*\(....,0000\)/.test(l) && !/\((fffe),(e000|e00d|e0dd)\)/i.test(l));
}

/** The dataset as DCMTK converts the original to `flag` (+ti, +te, +td), after `modify` (dcmodify -i args): what a peer's file must equal. */
async function reference(original: string, flag: string, modify: string[] = []): Promise<string[]> {
  const dir = tempDir('ref-');
  const out = join(dir, 'ref.dcm');
  let input = original;
  if (modify.length > 0) {
    input = join(dir, 'modified.dcm');
    writeFileSync(input, readFileSync(original));
    const m = await run('dcmodify', ['-nb', ...modify.flatMap((a) => ['-i', a]), input]);
    if (m.code !== 0) throw new Error(`dcmodify ${input}: ${m.stderr}`);
  }
  const r = await run('dcmconv', [flag, input, out]);
  if (r.code !== 0) throw new Error(`dcmconv ${flag} ${input}: ${r.stderr}`);
  return dump(out);
}

async function bySop(dir: string): Promise<Map<string, string>> {
  return new Map(await Promise.all(filesUnder(dir).map(async (f) => [(await readPart10File(f)).sopInstanceUid, f] as const)));
}

/** Each original arrived once at `dir`, in `ts`, with the same elements and the same pixel bytes. */
async function assertArrived(t: ExecutionContext, originals: string[], dir: string, ts: string, flag: string, opts: { modify?: string[]; originalTs?: string } = {}): Promise<void> {
  const { modify = [], originalTs = TS.explicitLE } = opts;
  const received = await bySop(dir);
  t.is(received.size, originals.length, `${dir}: every instance, once`);
  for (const f of originals) {
    const sop = (await readPart10File(f)).sopInstanceUid;
    const got = received.get(sop);
    if (!got) {
      t.fail(`${sop} missing at ${dir}`);
      continue;
    }
    const file = await readPart10File(got);
    t.is(file.transferSyntaxUid, ts, `${sop} stored at the peer in ${ts}`);
    const lines = await dump(got);
    t.true(lines.some((l) => l.startsWith('(0010,0010) PN')) && lines.some((l) => l.startsWith('(7fe0,0010) OW')), `${sop}: a real dump`);
    t.deepEqual(lines, await reference(f, flag, modify), `${sop}: values equal in ${ts}`);
    const dataset = (path: string) => {
      const bytes = datasetOf(readFileSync(path));
      return (path === got ? ts : TS.explicitLE) === TS.deflatedLE ? inflateRawSync(bytes) : bytes;
    };
    const pixels = (path: string, explicitVr: boolean) => Buffer.from(nativePixelData(dataset(path), explicitVr).value);
    t.true(pixels(got, ts !== TS.implicitLE).equals(pixels(f, originalTs !== TS.implicitLE)), `${sop}: pixels equal`);
  }
}

/** PixelMed's StorageSOPClassSCU: host port calledAE callingAE file|- [compressionLevel]; files from stdin, 1 = propose Deflated. */
function pixelmedStore(port: number, files: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('java', ['-cp', PIXELMED, 'com.pixelmed.network.StorageSOPClassSCU', '127.0.0.1', String(port), 'DICOM_ROUTER', 'PIXELMED', '-', '1'], { env: DCMTK_ENV });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.stdin.end(files.join('\n') + '\n');
    // No java or no pixelmed.jar: the test fails saying so (Debian: default-jre-headless, pixelmed-apps).
    child.once('error', (err) => resolve({ code: null, out: `cannot run PixelMed (${PIXELMED}): ${err.message}` }));
    child.once('close', (code) => resolve({ code, out }));
  });
}

test('PixelMed sends Deflated → router → storescp Implicit-LE-only and Explicit-LE-only: every instance arrives, values and pixels equal', async (t) => {
  const src = tempDir();
  const originals = [
    ...writeDataset(join(src, 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, pixelBytes: 128 * 1024 }),
    ...writeDataset(join(src, 'mr'), { count: 2, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, modality: 'MR' }),
  ];
  const [a, b] = [tempDir(), tempDir()];
  const implicitOnly = await startStorescp(a, { aeTitle: 'GEMINI', extraArgs: ['+xi'] });
  const explicitOnly = await startExplicitOnlyStorescp(b, 'VPLACE');
  t.teardown(implicitOnly.stop);
  t.teardown(explicitOnly.stop);
  const router = await startRouter({
    peers: [
      { aeTitle: 'GEMINI', host: '127.0.0.1', port: implicitOnly.port, retry: QUICK_RETRY },
      { aeTitle: 'VPLACE', host: '127.0.0.1', port: explicitOnly.port, retry: QUICK_RETRY },
    ],
    rulesDir: rulesDir('rules:\n  - name: everywhere\n    then: { forward: [GEMINI, VPLACE] }\n'),
  });
  t.teardown(router.stop);
  // PixelMed's StorageSOPClassSCU: host port calledAE callingAE file|- [compressionLevel], 1 = propose Deflated.
  const sent = await pixelmedStore(router.port, originals);
  t.is(sent.code, 0, sent.out);
  await eventually(t, 'both destinations have every instance', () => delivered(router) === 2 * originals.length, router.output);
  // Acknowledged from memory, their files follow (written once the router's ingest pauses).
  await eventually(t, 'every Part-10 file in the spool', () => filesUnder(join(router.dataDir, 'instances')).length === originals.length, router.output);
  const stored = await Promise.all(filesUnder(join(router.dataDir, 'instances')).map((f) => readPart10File(f)));
  t.true(stored.length === originals.length && stored.every((f) => f.transferSyntaxUid === TS.deflatedLE), 'PixelMed sent them Deflated and the router kept them so');
  await assertArrived(t, originals, a, TS.implicitLE, '+ti');
  await assertArrived(t, originals, b, TS.explicitLE, '+te');
});

test('storescu sends Deflated, modified on the way to an Implicit-LE-only peer; native instances go out Deflated to a peer configured Deflated-first', async (t) => {
  const src = tempDir();
  const originals = writeDataset(join(src, 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, pixelBytes: 64 * 1024 });
  const deflated = [];
  for (const f of originals) {
    const out = `${f}.deflated.dcm`;
    const r = await run('dcmconv', ['+td', f, out]);
    t.is(r.code, 0, r.stderr);
    deflated.push(out);
  }
  const natives = writeDataset(join(src, 'mr'), { count: 2, sopClassUid: SOP.mr, transferSyntaxUid: TS.implicitLE, modality: 'MR' });
  const [a, z] = [tempDir(), tempDir()];
  const implicitOnly = await startStorescp(a, { aeTitle: 'GEMINI', extraArgs: ['+xi'] });
  const prefersDeflated = await startStorescp(z, { aeTitle: 'ZIPPED', extraArgs: ['+xd'] });
  t.teardown(implicitOnly.stop);
  t.teardown(prefersDeflated.stop);
  const router = await startRouter({
    peers: [
      { aeTitle: 'GEMINI', host: '127.0.0.1', port: implicitOnly.port, retry: QUICK_RETRY },
      { aeTitle: 'ZIPPED', host: '127.0.0.1', port: prefersDeflated.port, retry: QUICK_RETRY, transferSyntaxes: [TS.deflatedLE, TS.explicitLE] },
    ],
    rulesDir: rulesDir(`rules:
  - name: deflated-to-gemini-modified
    when: { callingAe: DEFLATER }
    then:
      forward: [GEMINI]
      modify:
        - set: { attribute: InstitutionName, value: General Hospital }
  - name: natives-to-zipped
    when: { callingAe: NATIVE }
    then: { forward: [ZIPPED] }
`),
  });
  t.teardown(router.stop);
  const d = await run('storescu', ['-aet', 'DEFLATER', '-aec', 'DICOM_ROUTER', '-xd', '127.0.0.1', String(router.port), ...deflated]);
  t.is(d.code, 0, d.stdout + d.stderr);
  const n = await run('storescu', ['-aet', 'NATIVE', '-aec', 'DICOM_ROUTER', '-xi', '127.0.0.1', String(router.port), ...natives]);
  t.is(n.code, 0, n.stdout + n.stderr);
  await eventually(t, 'every instance delivered', () => delivered(router) === originals.length + natives.length, router.output);
  await eventually(t, 'every Part-10 file in the spool', () => filesUnder(join(router.dataDir, 'instances')).length === originals.length + natives.length, router.output);
  const stored = new Map((await Promise.all(filesUnder(join(router.dataDir, 'instances')).map((f) => readPart10File(f)))).map((f) => [f.sopInstanceUid, f.transferSyntaxUid]));
  for (const f of deflated) t.is(stored.get((await readPart10File(f)).sopInstanceUid), TS.deflatedLE, 'storescu sent it Deflated');
  await assertArrived(t, originals, a, TS.implicitLE, '+ti', { modify: ['(0008,0080)=General Hospital'] });
  await assertArrived(t, natives, z, TS.deflatedLE, '+td', { originalTs: TS.implicitLE });
});
