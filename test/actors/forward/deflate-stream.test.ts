// Deflated Explicit VR LE on the way out: the raw Deflate stages, their composition with the native
// converter in datasetBytes (every direction among ILE/ELE/EBE/Deflated), modifications of a stored
// Deflated instance, corrupt input, and flat memory for an instance far larger than the bound.
import test from 'ava';
import fc from 'fast-check';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { data } from 'dcmjs';
import { datasetBytes } from '../../../actors/forward/dataset-stream.ts';
import { deflate, DeflateStreamError, inflate, skip } from '../../../actors/forward/deflate-stream.ts';
import { inflatedSource, readInflatedHeader } from '../../../actors/forward/deflated-source.ts';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import type { DatasetSource } from '../../../machines/dimse/dimse.events.ts';
import { parseHeader } from '../../../protocol/dataset-header.ts';
import { canTranscode } from '../../../protocol/deflated.ts';
import { part10Header } from '../../../protocol/part10.ts';
import { TransferSyntaxConverter, TransferSyntaxConvertError } from '../../../protocol/ts-convert.ts';
import type { Modification } from '../../../routing/rule.types.ts';
import { datasetOf, encodeDataset, encodingOf, instanceElements, newUid, SOP, TS } from '../../helpers/dicom-files.ts';
import { tempDir } from '../../helpers/processes.ts';

const NATIVE = [TS.implicitLE, TS.explicitLE, TS.explicitBE] as const;
const dir = tempDir('deflate-stream-');
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

async function* from(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}

function convertWhole(bytes: Uint8Array, fromUid: string, toUid: string): Buffer {
  const c = new TransferSyntaxConverter(fromUid, toUid);
  return Buffer.concat([...c.push(bytes), ...c.end()]);
}

function meta(sopInstanceUid: string, ts: string): Buffer {
  return part10Header({
    sopClassUid: SOP.ct, sopInstanceUid, transferSyntaxUid: ts,
    implementationClassUid: '2.25.1', implementationVersionName: 'TEST', sourceAeTitle: 'TESTGEN',
  });
}

/** A CT with private tags and a sequence, written as a Part-10 file in `ts` (Deflated: deflated Explicit VR LE). */
function writeInstance(name: string, ts: string, pixelBytes = 8192): { path: string; sopInstanceUid: string; ele: Buffer } {
  const sopInstanceUid = newUid();
  const elements = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid, studyInstanceUid: newUid(), seriesInstanceUid: newUid(), withPrivateTags: true, pixelBytes });
  const ele = encodeDataset(elements, encodingOf(TS.explicitLE));
  const dataset = ts === TS.deflatedLE ? deflateRawSync(ele) : encodeDataset(elements, encodingOf(ts));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([meta(sopInstanceUid, ts), dataset, dataset.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]));
  return { path, sopInstanceUid, ele };
}

async function sourceOf(path: string, to: string): Promise<DatasetSource> {
  const f = await readPart10File(path);
  return { kind: 'prepared', head: new Uint8Array(0), path, offset: f.datasetOffset, length: f.datasetLength, convert: { from: f.transferSyntaxUid, to } };
}

/**
 * The dataset dcmjs reads, naturalized. `dropPrivate`: without private elements, for comparisons with
 * Implicit VR, which has no VR for them (their bytes pass unchanged as UN; the byte comparisons cover them).
 */
function naturalized(dataset: Uint8Array, ts: string, dropPrivate = false): Record<string, unknown> {
  const file = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta('1.2.3', ts).subarray(132), dataset]);
  const dict = data.DicomMessage.readFile(file.buffer.slice(file.byteOffset, file.byteOffset + file.length)).dict;
  const out = data.DicomMetaDictionary.naturalizeDataset(dict);
  if (dropPrivate) for (const key of Object.keys(out)) if (/^[0-9A-F]{8}$/i.test(key) && parseInt(key.slice(0, 4), 16) % 2 === 1) delete out[key];
  return out;
}

test('what can be produced from what: Deflated to and from every native syntax, never with encapsulated ones', (t) => {
  for (const x of NATIVE) {
    t.true(canTranscode(TS.deflatedLE, x));
    t.true(canTranscode(x, TS.deflatedLE));
  }
  t.true(canTranscode(TS.deflatedLE, TS.deflatedLE));
  t.false(canTranscode(TS.deflatedLE, TS.jpegBaseline));
  t.false(canTranscode(TS.jpegBaseline, TS.deflatedLE));
});

test('deflate then inflate gives back every byte, in any chunking; the deflated stream is raw (no zlib header) and even', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 8 }), fc.integer({ min: 1, max: 97 }), async (chunks, cut) => {
      const all = Buffer.concat(chunks);
      const deflated = await collect(deflate(from(chunks)));
      t.is(deflated.length % 2, 0);
      t.true(inflateRawSync(deflated).equals(all), 'zlib inflates it as raw Deflate');
      const pieces = [];
      for (let i = 0; i < deflated.length; i += cut) pieces.push(deflated.subarray(i, i + cut));
      t.true((await collect(inflate(from(pieces)))).equals(all));
    }),
    { numRuns: 60 },
  );
});

test('skip drops exactly the first bytes across chunk boundaries, and fails on a stream too short', async (t) => {
  t.is((await collect(skip(from([Buffer.from('abc'), Buffer.from('defg')]), 4))).toString(), 'efg');
  t.is((await collect(skip(from([Buffer.from('abc')]), 0))).toString(), 'abc');
  await t.throwsAsync(collect(skip(from([Buffer.from('abc')]), 5)), { message: /2 bytes before the 5 to skip/ });
});

test('corrupt, cut-short and non-Deflate input fail with a clear DeflateStreamError', async (t) => {
  const good = deflateRawSync(Buffer.alloc(200_000, 'DICOM router '));
  const cut = await t.throwsAsync(collect(inflate(from([good.subarray(0, good.length >> 1)]))), { instanceOf: DeflateStreamError });
  t.regex(cut.message, /deflated dataset ends before its final block/);
  const bad = Buffer.from(good);
  bad.fill(0xff, 10, 40);
  t.regex((await t.throwsAsync(collect(inflate(from([bad]))), { instanceOf: DeflateStreamError })).message, /deflated dataset is corrupt: /);
  t.regex((await t.throwsAsync(collect(inflate(from([Buffer.from('plain text, not a deflate stream at all')]))), { instanceOf: DeflateStreamError })).message, /is corrupt/);
  // A consumer that stops early ends the stream (no hang, no leak of an unfinished pipeline).
  for await (const _ of inflate(from([good]))) break;
  t.pass();
});

for (const x of NATIVE) {
  test(`${x} → Deflated → every native syntax equals the direct conversion, and round-trips value-equal`, async (t) => {
    const stored = writeInstance(`native-${x}.dcm`, x);
    const deflated = await collect(datasetBytes(await sourceOf(stored.path, TS.deflatedLE)));
    t.is(deflated.length % 2, 0);
    const original = Buffer.from(datasetOf(readFileSync(stored.path)));
    const asEle = convertWhole(original, x, TS.explicitLE); // identity when x is Explicit VR LE
    t.true(inflateRawSync(deflated).equals(asEle), 'the deflated bytes are the Explicit VR LE dataset');
    const asDeflatedFile = join(dir, `deflated-from-${x}.dcm`);
    writeFileSync(asDeflatedFile, Buffer.concat([meta(stored.sopInstanceUid, TS.deflatedLE), deflated]));
    for (const y of NATIVE) {
      const out = await collect(datasetBytes(await sourceOf(asDeflatedFile, y)));
      t.true(out.equals(convertWhole(asEle, TS.explicitLE, y)), `${x} → Deflated → ${y}`);
      // Values through dcmjs for the little-endian outputs (Big Endian ones are checked by bytes above; the
      // native converter itself is checked against DCMTK in ts-convert.test.ts).
      if (y === TS.explicitBE) continue;
      const implicit = x === TS.implicitLE || y === TS.implicitLE;
      const [reference, referenceTs] = x === TS.explicitBE ? [asEle, TS.explicitLE] : [original, x];
      t.deepEqual(naturalized(out, y, implicit), naturalized(reference, referenceTs, implicit), `${x} → Deflated → ${y} is value-equal`);
    }
  });
}

test('a stored Deflated instance with modifications: inflated, header rewritten, then sent in any syntax incl. Deflated again', async (t) => {
  const stored = writeInstance('modified.dcm', TS.deflatedLE, 20_000);
  const file = await readPart10File(stored.path);
  const header = await readInflatedHeader(file);
  t.true(stored.ele.subarray(0, header.length).equals(Buffer.from(header)), 'the inflated header is the dataset up to Pixel Data');
  t.is(parseHeader(header, TS.explicitLE).sopInstanceUid, stored.sopInstanceUid);
  const mods: Modification[] = [
    { op: 'set', target: { kind: 'tag', tag: '00080080', keyword: 'InstitutionName', vr: 'LO' }, value: 'General Hospital' },
    { op: 'remove', target: { kind: 'tag', tag: '00100020', keyword: 'PatientID', vr: 'LO' } },
  ];
  const want = naturalized(stored.ele, TS.explicitLE);
  want.InstitutionName = 'General Hospital';
  delete want.PatientID;
  for (const to of [TS.implicitLE, TS.explicitLE, TS.deflatedLE]) {
    const source = await inflatedSource(file, to, mods);
    let out = await collect(datasetBytes(source));
    if (to === TS.deflatedLE) out = inflateRawSync(out);
    const implicit = to === TS.implicitLE;
    const expected = implicit ? Object.fromEntries(Object.entries(want).filter(([k]) => !/^[0-9A-F]{3}[13579BDF][0-9A-F]{4}$/i.test(k))) : want;
    t.deepEqual(naturalized(out, implicit ? to : TS.explicitLE, implicit), expected, `modified and sent as ${to}`);
  }
});

test('a corrupt or cut-short stored Deflated instance fails in prepare, before anything is sent', async (t) => {
  const stored = writeInstance('to-corrupt.dcm', TS.deflatedLE, 200_000);
  const file = await readPart10File(stored.path);
  const bytes = readFileSync(stored.path);
  const corrupt = Buffer.from(bytes);
  corrupt.fill(0x5a, file.datasetOffset + 200, file.datasetOffset + 260);
  writeFileSync(join(dir, 'corrupt.dcm'), corrupt);
  writeFileSync(join(dir, 'cut.dcm'), bytes.subarray(0, file.datasetOffset + (file.datasetLength >> 1)));
  // Overwritten bytes may still inflate (to garbage the converter then refuses as malformed): either
  // way the instance fails in prepare, with its reason, before anything is sent.
  const corruptError = await t.throwsAsync(inflatedSource(await readPart10File(join(dir, 'corrupt.dcm')), TS.implicitLE, []));
  t.true(corruptError instanceof DeflateStreamError || corruptError instanceof TransferSyntaxConvertError, String(corruptError));
  t.truthy(corruptError?.message, 'with its reason');
  await t.throwsAsync(inflatedSource(await readPart10File(join(dir, 'cut.dcm')), TS.implicitLE, []), { instanceOf: DeflateStreamError, message: /deflated dataset ends before its final block/ }, 'cut.dcm');
});

test('a large Deflated instance streams out converted, and a large native one deflated, in flat memory', async (t) => {
  // 512 MiB of 16-bit pixels: far above the bound below, which only a streaming pipeline stays under.
  const pixelBytes = 512 * 1024 * 1024;
  const sopInstanceUid = newUid();
  const elements = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid, studyInstanceUid: newUid(), seriesInstanceUid: newUid(), pixelBytes: 0 });
  const head = encodeDataset(elements, encodingOf(TS.explicitLE));
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelBytes, 8);
  const piece = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + (i >> 11)) & 0xff;
  async function* native(): AsyncIterable<Uint8Array> {
    yield head;
    yield pixelHeader;
    for (let sent = 0; sent < pixelBytes; sent += piece.length) yield piece;
  }
  // The fixtures are written by streaming too: a Deflated file and an Explicit VR LE one.
  const deflatedPath = join(dir, 'large-deflated.dcm');
  const elePath = join(dir, 'large-ele.dcm');
  for (const [path, ts, body] of [[deflatedPath, TS.deflatedLE, deflate(native(), { level: 1 })], [elePath, TS.explicitLE, native()]] as const) {
    const fd = openSync(path, 'w');
    writeSync(fd, meta(sopInstanceUid, ts));
    for await (const c of body) writeSync(fd, c);
    closeSync(fd);
  }
  for (const [path, to] of [[deflatedPath, TS.implicitLE], [elePath, TS.deflatedLE]] as const) {
    const before = process.memoryUsage();
    let peak = 0;
    let bytes = 0;
    let n = 0;
    for await (const c of datasetBytes(await sourceOf(path, to))) {
      bytes += c.length;
      if (++n % 64 === 0) {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.rss - before.rss, m.heapUsed + m.arrayBuffers - before.heapUsed - before.arrayBuffers);
      }
    }
    if (to === TS.implicitLE) t.is(bytes, convertWhole(head, TS.explicitLE, TS.implicitLE).length + 8 + pixelBytes, 'every byte converted');
    else t.true(bytes > 0 && bytes < pixelBytes, 'deflated');
    // Freed chunks are collected lazily (V8 external memory), so the bound is generous but far below the 512 MiB instance.
    t.true(peak < 128 * 1024 * 1024, `memory grew by ${peak} bytes`);
    t.log(`${path.endsWith('deflated.dcm') ? 'Deflated → ILE' : 'ELE → Deflated'}: peak growth ${(peak / 1048576).toFixed(1)} MiB`);
  }
});
