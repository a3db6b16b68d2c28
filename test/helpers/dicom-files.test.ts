import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { readPart10Header } from '../../protocol/part10.ts';
import {
  datasetOf,
  makeInstance,
  PHILIPS_PET_CREATOR,
  PRIVATE_CREATOR,
  SOP,
  TEST_IMPLEMENTATION_CLASS_UID,
  TINY_JPEG_BASELINE,
  TS,
  writeDataset,
} from './dicom-files.ts';

const exec = promisify(execFile);
const ENV = { ...process.env, TCP_NODELAY: '1' };

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dicom-files-'));
  dirs.push(d);
  return d;
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SYNTAXES = [
  { name: 'Implicit VR LE', ts: TS.implicitLE, dcmtk: 'Little Endian Implicit', jpeg: false },
  { name: 'Explicit VR LE', ts: TS.explicitLE, dcmtk: 'Little Endian Explicit', jpeg: false },
  { name: 'Explicit VR BE', ts: TS.explicitBE, dcmtk: 'Big Endian Explicit', jpeg: false },
  { name: 'JPEG Baseline', ts: TS.jpegBaseline, dcmtk: 'JPEG Baseline', jpeg: true },
];

for (const s of SYNTAXES) {
  test(`${s.name}: dcmdump reads every generated file, with its PatientID and private creators`, async (t) => {
    const dir = tempDir();
    const paths = writeDataset(dir, { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: s.ts, encapsulatedJpeg: s.jpeg, patientId: 'PAT-DUMP', withPrivateTags: true, pixelBytes: 4096 });
    t.is(paths.length, 2);
    for (const path of paths) {
      // exec rejects on a non-zero exit; -E (stop on error) refuses damaged files; no warnings allowed either.
      const { stdout, stderr } = await exec('dcmdump', ['-E', '+L', path], { env: ENV });
      t.is(stderr, '', path);
      t.regex(stdout, new RegExp(`# Used TransferSyntax: ${s.dcmtk}`));
      t.regex(stdout, /\(0010,0020\) LO \[PAT-DUMP\]/);
      t.regex(stdout, new RegExp(`\\(0009,0010\\) LO \\[${PRIVATE_CREATOR}\\]`));
      t.regex(stdout, new RegExp(`\\(7053,0010\\) LO \\[${PHILIPS_PET_CREATOR}\\]`));
      t.regex(stdout, /\(0008,1110\) SQ \(Sequence with undefined length #=1\)/);
      t.regex(stdout, /\(0040,0008\) SQ \(Sequence with undefined length #=1\)/);
      t.regex(stdout, s.jpeg ? /\(7fe0,0010\) OB \(PixelSequence #=2\)/ : /\(7fe0,0010\) OW .* # 4096, 1 PixelData/);
    }
  });
}

test('the embedded JPEG is a real 8x8 baseline image: DCMTK decompresses it', async (t) => {
  t.deepEqual([...TINY_JPEG_BASELINE.subarray(0, 2)], [0xff, 0xd8]);
  t.deepEqual([...TINY_JPEG_BASELINE.subarray(-2)], [0xff, 0xd9]);
  const dir = tempDir();
  const [path] = writeDataset(dir, { count: 1, sopClassUid: SOP.secondaryCapture, transferSyntaxUid: TS.jpegBaseline, encapsulatedJpeg: true });
  const out = join(dir, 'decompressed.dcm');
  await exec('dcmdjpeg', [path, out], { env: ENV });
  const { stdout } = await exec('dcmdump', ['-E', out], { env: ENV });
  t.regex(stdout, /# Used TransferSyntax: Little Endian Explicit/);
  t.regex(stdout, /\(7fe0,0010\) OW .* # {2}64, 1 PixelData/);
});

test('CT-sized pixel data is laid out as 512x512', async (t) => {
  const dir = tempDir();
  const [path] = writeDataset(dir, { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 524288 });
  const { stdout } = await exec('dcmdump', ['-E', path], { env: ENV });
  t.regex(stdout, /\(0028,0010\) US 512 /);
  t.regex(stdout, /\(0028,0011\) US 512 /);
  t.regex(stdout, /# 524288, 1 PixelData/);
});

test('writeDataset: one series, numbered instances, distinct SOP instance UIDs', (t) => {
  const dir = tempDir();
  const paths = writeDataset(join(dir, 'nested', 'series'), { count: 5, sopClassUid: SOP.mr, transferSyntaxUid: TS.implicitLE, pixelBytes: 0 });
  t.deepEqual(
    paths.map((p) => p.slice(-8)),
    ['0001.dcm', '0002.dcm', '0003.dcm', '0004.dcm', '0005.dcm'],
  );
  const keys = paths.map((p) => parseHeader(datasetOf(readFileSync(p)), TS.implicitLE));
  t.is(new Set(keys.map((k) => k.sopInstanceUid)).size, 5);
  t.is(new Set(keys.map((k) => k.studyInstanceUid)).size, 1);
  t.is(new Set(keys.map((k) => k.seriesInstanceUid)).size, 1);
  t.deepEqual(
    keys.map((k) => k.instanceNumber),
    [1, 2, 3, 4, 5],
  );
  t.deepEqual(readdirSync(join(dir, 'nested', 'series')).length, 5);
});

test('makeInstance: meta and dataset agree; datasetOf returns the bytes after the meta group', (t) => {
  const file = makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitBE, sopInstanceUid: '1.2.3.4', pixelBytes: 16 });
  const { meta, datasetOffset } = readPart10Header(file);
  t.like(meta, { sopClassUid: SOP.ct, sopInstanceUid: '1.2.3.4', transferSyntaxUid: TS.explicitBE, implementationClassUid: TEST_IMPLEMENTATION_CLASS_UID });
  const ds = datasetOf(file);
  t.is(ds.length, file.length - datasetOffset);
  t.deepEqual([...ds.subarray(0, 6)], [0x00, 0x08, 0x00, 0x05, 0x43, 0x53]); // (0008,0005) CS in big endian
  t.throws(() => makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 3 }), { instanceOf: RangeError });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      server.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`storescp did not listen on ${port}`);
}

test('storescu sends every syntax to storescp (JPEG proposed with -xy)', async (t) => {
  const dir = tempDir();
  const inbox = join(dir, 'inbox');
  const paths = SYNTAXES.flatMap((s) =>
    writeDataset(join(dir, s.name.replace(/\W/g, '')), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: s.ts, encapsulatedJpeg: s.jpeg, withPrivateTags: true }),
  );
  const port = await freePort();
  mkdirSync(inbox);
  const scp = spawn('storescp', ['+xa', '-od', inbox, String(port)], { env: ENV, stdio: 'ignore' });
  try {
    await waitForPort(port);
    await exec('storescu', ['-xy', '127.0.0.1', String(port), ...paths], { env: ENV });
    t.is(readdirSync(inbox).length, paths.length);
  } finally {
    scp.kill();
  }
});
