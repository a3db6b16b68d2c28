import test from 'ava';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { part10Header, readPart10Header } from '../../protocol/part10.ts';
import { canConvert, swapUnit, TransferSyntaxConverter, TransferSyntaxConvertError } from '../../protocol/ts-convert.ts';
import { encodeDataset, encodingOf, instanceElements, itemHeader, SOP, TS } from '../helpers/dicom-files.ts';
import type { Element, Encoding } from '../helpers/dicom-files.ts';

const exec = promisify(execFile);
const ENV = { ...process.env, TCP_NODELAY: '1' };
const dir = mkdtempSync(join(tmpdir(), 'ts-convert-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const UIDS = { sopInstanceUid: '1.2.3.4.5', studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.6' };
const SYNTAXES = [
  { name: 'ILE', uid: TS.implicitLE, dcmconv: '+ti' },
  { name: 'ELE', uid: TS.explicitLE, dcmconv: '+te' },
  { name: 'EBE', uid: TS.explicitBE, dcmconv: '+tb' },
] as const;
const PAIRS = SYNTAXES.flatMap((a) => SYNTAXES.filter((b) => b !== a).map((b) => [a, b] as const));
const U = 0xffffffff;

/** Numbers as raw bytes in the encoding's byte order, for VRs the helper encoder takes as bytes (OW, OF, AT, OD, SV...). */
function raw(unit: 2 | 4 | 8, values: number[], enc: Encoding, float = false): Uint8Array {
  const b = Buffer.alloc(unit * values.length);
  const le = enc.littleEndian;
  values.forEach((v, i) => {
    const o = i * unit;
    if (unit === 2) le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o);
    else if (unit === 4) float ? (le ? b.writeFloatLE(v, o) : b.writeFloatBE(v, o)) : le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o);
    else float ? (le ? b.writeDoubleLE(v, o) : b.writeDoubleBE(v, o)) : le ? b.writeBigInt64LE(BigInt(v), o) : b.writeBigInt64BE(BigInt(v), o);
  });
  return b;
}

/** Every numeric VR, the ambiguous dictionary VRs (xs, lt, ox), an icon image with 8-bit pixel data, a private sequence, a group length. */
function extendedElements(enc: Encoding): Element[] {
  const base = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, pixelBytes: 512, ...UIDS });
  const extra: Element[] = [
    { tag: 0x00180000, vr: 'UL', value: [999] },
    { tag: 0x00181063, vr: 'DS', value: '33.3' },
    { tag: 0x00181310, vr: 'US', value: [0, 256, 256, 0] },
    { tag: 0x00186016, vr: 'UL', value: [0x01020304] },
    { tag: 0x00186020, vr: 'SL', value: [-123456] },
    { tag: 0x00189087, vr: 'FD', value: [1000.5] },
    { tag: 0x00189089, vr: 'FD', value: [0.25, -0.5, 1] },
    { tag: 0x00189219, vr: 'SS', value: [-5, 7] },
    { tag: 0x00280008, vr: 'IS', value: '1' },
    { tag: 0x00280009, vr: 'AT', value: raw(2, [0x0018, 0x1063], enc) },
    { tag: 0x00280106, vr: 'US', value: [3] },
    {
      tag: 0x00283000, vr: 'SQ', value: [{ elements: [
        { tag: 0x00283002, vr: 'US', value: [4, 0, 16] },
        { tag: 0x00283006, vr: 'OW', value: raw(2, [1, 2, 0x300, 0x4000], enc) },
      ] }],
    },
    { tag: 0x00290010, vr: 'LO', value: 'ROUTER SQ' },
    {
      tag: 0x00291010, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: true, elements: [
        { tag: 0x00080100, vr: 'SH', value: 'C1' },
        { tag: 0x00100020, vr: 'LO', value: 'INNER' },
      ] }],
    },
    { tag: 0x00660016, vr: 'OF', value: raw(4, [1.5, -2.25], enc, true) },
    { tag: 0x00660024, vr: 'OW', value: raw(2, [1, 2, 3, 65535], enc) },
    {
      tag: 0x00880200, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: true, elements: [
        { tag: 0x00280002, vr: 'US', value: [1] },
        { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
        { tag: 0x00280010, vr: 'US', value: [4] },
        { tag: 0x00280011, vr: 'US', value: [4] },
        { tag: 0x00280100, vr: 'US', value: [8] },
        { tag: 0x00280101, vr: 'US', value: [8] },
        { tag: 0x00280102, vr: 'US', value: [7] },
        { tag: 0x00280103, vr: 'US', value: [0] },
        { tag: 0x7fe00010, vr: 'OB', value: Uint8Array.from({ length: 16 }, (_, i) => i * 16 + 1) },
      ] }],
    },
    { tag: 0x60000010, vr: 'US', value: [4] },
    { tag: 0x60000011, vr: 'US', value: [8] },
    { tag: 0x60000100, vr: 'US', value: [1] },
    { tag: 0x60003000, vr: 'OW', value: raw(2, [0xf00f, 0x1234], enc) },
  ];
  return [...base, ...extra].sort((a, b) => a.tag - b.tag);
}

/** Signed pixels: "xs" elements become SS, except LUT Descriptors, which stay US (as DCMTK has them). */
function signedElements(enc: Encoding): Element[] {
  return extendedElements(enc).map((e) =>
    e.tag === 0x00280103 ? { ...e, value: [1] } : e.tag === 0x00280106 ? { ...e, vr: 'SS', value: [-3] } : e,
  );
}

/** The standard generated test instance (private tags, defined/undefined/nested sequences, 16-bit pixel data). */
function standardElements(): Element[] {
  return instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, pixelBytes: 4096, ...UIDS });
}

function part10(uid: string, dataset: Uint8Array): Buffer {
  return Buffer.concat([
    part10Header({ sopClassUid: SOP.ct, sopInstanceUid: UIDS.sopInstanceUid, transferSyntaxUid: uid, implementationClassUid: '1.2.3', implementationVersionName: 'T' }),
    dataset,
  ]);
}

function convert(from: string, to: string, chunks: Uint8Array[]): Buffer {
  const c = new TransferSyntaxConverter(from, to);
  const out: Uint8Array[] = [];
  for (const chunk of chunks) out.push(...c.push(chunk));
  out.push(...c.end());
  return Buffer.concat(out);
}

async function dcmconv(opt: string, input: Buffer, name: string): Promise<Buffer> {
  const src = join(dir, `${name}-in.dcm`);
  const dst = join(dir, `${name}-out.dcm`);
  writeFileSync(src, input);
  // -e: undefined lengths for sequences and items, -g: no group lengths (what the converter writes).
  await exec('dcmconv', ['-e', '-g', opt, src, dst], { env: ENV });
  const out = readFileSync(dst);
  return out.subarray(readPart10Header(out).datasetOffset);
}

type Entry = { path: string; vr?: string; value: Buffer };
/** Flat list of every element below sequences, with explicit VRs where the encoding has them. */
function listElements(bytes: Uint8Array, enc: Encoding): Entry[] {
  const out: Entry[] = [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number, e: Encoding) => (e.littleEndian ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number, e: Encoding) => (e.littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const tagAt = (o: number, e: Encoding) => ((u16(o, e) << 16) | u16(o + 2, e)) >>> 0;
  const hex = (t: number) => t.toString(16).padStart(8, '0');
  // Returns the offset after the dataset (at `end`, or after an item delimiter).
  const dataset = (pos: number, end: number, e: Encoding, prefix: string): number => {
    while (pos < end) {
      const tag = tagAt(pos, e);
      if (tag === 0xfffee00d) return pos + 8;
      let vr: string | undefined;
      let len: number;
      let hdr: number;
      if (e.explicitVr) {
        vr = b.toString('latin1', pos + 4, pos + 6);
        const long = ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'].includes(vr);
        len = long ? u32(pos + 8, e) : u16(pos + 6, e);
        hdr = long ? 12 : 8;
      } else {
        len = u32(pos + 4, e);
        hdr = 8;
      }
      const path = prefix + hex(tag);
      pos += hdr;
      if (vr === 'SQ' || len === U) {
        out.push({ path, vr, value: Buffer.alloc(0) });
        const inner = vr === 'UN' ? { explicitVr: false, littleEndian: true } : e;
        const seqEnd = len === U ? Infinity : pos + len;
        let i = 0;
        while (pos < seqEnd) {
          const t = tagAt(pos, inner);
          const l = u32(pos + 4, inner);
          pos += 8;
          if (t === 0xfffee0dd) break;
          pos = dataset(pos, l === U ? Infinity : pos + l, inner, `${path}[${i++}].`);
        }
      } else {
        out.push({ path, vr, value: b.subarray(pos, pos + len) });
        pos += len;
      }
    }
    return pos;
  };
  dataset(0, b.length, enc, '');
  return out;
}

/** Values in little-endian order, so datasets in different byte orders compare. */
function normalized(entries: Entry[], enc: Encoding): Array<{ path: string; value: string }> {
  return entries.map((e) => {
    const v = Buffer.from(e.value);
    const unit = e.vr ? swapUnit(e.vr) : 0;
    if (!enc.littleEndian && unit > 1) (unit === 2 ? v.swap16() : unit === 4 ? v.swap32() : v.swap64());
    return { path: e.path, value: v.toString('hex') };
  });
}

test('canConvert: any pair of the three native syntaxes, nothing encapsulated or deflated', (t) => {
  for (const a of SYNTAXES) for (const b of SYNTAXES) t.true(canConvert(a.uid, b.uid), `${a.name} -> ${b.name}`);
  for (const other of [TS.jpegBaseline, TS.deflatedLE, '1.2.840.10008.1.2.4.90', '1.2.3']) {
    t.false(canConvert(other, TS.explicitLE));
    t.false(canConvert(TS.implicitLE, other));
  }
  const e = t.throws(() => new TransferSyntaxConverter(TS.jpegBaseline, TS.implicitLE), { instanceOf: TransferSyntaxConvertError });
  t.is(e?.code, 'unsupported-syntax');
});

for (const [from, to] of PAIRS) {
  for (const [n, [label, build]] of ([
    ['standard instance', () => standardElements()],
    ['every numeric VR, ambiguous VRs, icon image, private SQ', extendedElements],
    ['signed pixel data', signedElements],
  ] as const).entries()) {
    test(`${from.name} -> ${to.name}, ${label}: byte-identical to dcmconv -e -g ${to.dcmconv}`, async (t) => {
      const enc = encodingOf(from.uid);
      const input = encodeDataset(build(enc), enc);
      const ours = convert(from.uid, to.uid, [input]);
      const theirs = await dcmconv(to.dcmconv, part10(from.uid, input), `${from.name}-${to.name}-${n}`);
      t.deepEqual(listElements(ours, encodingOf(to.uid)), listElements(theirs, encodingOf(to.uid)));
      t.true(ours.equals(theirs));
      // And dcmdump reads our output without complaint.
      const path = join(dir, `${from.name}-${to.name}-${n}-ours.dcm`);
      writeFileSync(path, part10(to.uid, ours));
      const { stderr } = await exec('dcmdump', ['-E', '+L', '-q', path], { env: ENV });
      t.is(stderr, '');
    });
  }
}

test('same syntax in and out passes the bytes through', (t) => {
  for (const s of SYNTAXES) {
    const enc = encodingOf(s.uid);
    const input = encodeDataset(standardElements(), enc);
    t.true(convert(s.uid, s.uid, [input.subarray(0, 100), input.subarray(100)]).equals(input));
  }
});

test('chunked at random boundaries (property): output equals the one-shot conversion', (t) => {
  const cases = PAIRS.map(([from, to]) => {
    const enc = encodingOf(from.uid);
    const input = encodeDataset(extendedElements(enc), enc);
    return { from: from.uid, to: to.uid, input, expected: convert(from.uid, to.uid, [input]) };
  });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: cases.length - 1 }), fc.array(fc.integer({ min: 0, max: 1 << 16 }), { maxLength: 40 }), (which, cuts) => {
      const { from, to, input, expected } = cases[which];
      const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
      const chunks: Uint8Array[] = [];
      let prev = 0;
      for (const p of [...points, input.length]) {
        chunks.push(input.subarray(prev, p));
        prev = p;
      }
      return convert(from, to, chunks).equals(expected);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('round trips keep every value: ELE -> ILE -> ELE and ELE -> EBE -> ILE -> ELE', (t) => {
  const ele = encodingOf(TS.explicitLE);
  const input = encodeDataset(extendedElements(ele), ele);
  const viaIle = convert(TS.implicitLE, TS.explicitLE, [convert(TS.explicitLE, TS.implicitLE, [input])]);
  const viaAll = convert(TS.implicitLE, TS.explicitLE, [convert(TS.explicitBE, TS.implicitLE, [convert(TS.explicitLE, TS.explicitBE, [input])])]);
  const withoutGroupLengths = (es: Entry[]) => es.filter((e) => !e.path.endsWith('0000'));
  const original = withoutGroupLengths(listElements(input, ele));
  for (const result of [viaIle, viaAll]) {
    const entries = listElements(result, ele);
    t.deepEqual(entries.map((e) => [e.path, e.value.toString('hex')]), original.map((e) => [e.path, e.value.toString('hex')]));
    // VRs survive, except where Implicit VR cannot carry them: private data elements come back as UN
    // (private sequences, having undefined length, as SQ) and 8-bit OB pixel data as OW (PS3.5 A.1).
    entries.forEach((e, i) => {
      const privateData = parseInt(e.path.slice(-8, -4), 16) % 2 === 1 && parseInt(e.path.slice(-4), 16) > 0xff;
      const expected = privateData && original[i].vr !== 'SQ' ? 'UN' : e.path.endsWith('7fe00010') ? 'OW' : original[i].vr;
      t.is(e.vr, expected, e.path);
    });
  }
  t.true(viaAll.equals(viaIle));
});

test('every pair keeps the values of the standard instance (byte order normalized)', (t) => {
  for (const [from, to] of PAIRS) {
    const input = encodeDataset(standardElements(), encodingOf(from.uid));
    const before = normalized(listElements(input, encodingOf(from.uid)), encodingOf(from.uid));
    const after = normalized(listElements(convert(from.uid, to.uid, [input]), encodingOf(to.uid)), encodingOf(to.uid));
    // Implicit input carries no VRs: its values are those of the same elements in Explicit VR LE.
    const reference = from.uid === TS.implicitLE ? normalized(listElements(encodeDataset(standardElements(), encodingOf(TS.explicitLE)), encodingOf(TS.explicitLE)), encodingOf(TS.explicitLE)) : before;
    t.deepEqual(after, reference, `${from.name} -> ${to.name}`);
  }
});

test('a value too long for a 2-byte length becomes UN with a 4-byte length (its numbers still swapped)', async (t) => {
  const ile = encodingOf(TS.implicitLE);
  const longText = 'A'.repeat(70_000);
  const manyUs = Array.from({ length: 40_000 }, (_, i) => i);
  const input = encodeDataset([
    { tag: 0x00081030, vr: 'LO', value: longText },
    { tag: 0x00181310, vr: 'US', value: manyUs },
    { tag: 0x00200010, vr: 'SH', value: 'S1' },
  ], ile);
  for (const to of [TS.explicitLE, TS.explicitBE]) {
    const out = convert(TS.implicitLE, to, [input]);
    const entries = listElements(out, encodingOf(to));
    t.deepEqual(entries.map((e) => [e.path, e.vr, e.value.length]), [
      ['00081030', 'UN', 70_000],
      ['00181310', 'UN', 80_000],
      ['00200010', 'SH', 2],
    ]);
    t.is(entries[0].value.toString('latin1'), longText);
    const us = entries[1].value;
    t.deepEqual([0, 1, 39_999].map((i) => (to === TS.explicitLE ? us.readUInt16LE(i * 2) : us.readUInt16BE(i * 2))), [0, 1, 39_999]);
    const path = join(dir, `long-${to}.dcm`);
    writeFileSync(path, part10(to, out));
    const { stdout } = await exec('dcmdump', ['-E', '-q', path], { env: ENV });
    t.regex(stdout, /\(0020,0010\) SH \[S1\]/);
  }
});

test('UN of undefined length keeps its Implicit VR LE content in every syntax', (t) => {
  const ele = encodingOf(TS.explicitLE);
  const ileItem = Buffer.concat([
    itemHeader(0xfffee000, U, ele),
    encodeDataset([{ tag: 0x00181310, vr: 'US', value: [1, 2] }], { explicitVr: false, littleEndian: true }),
    itemHeader(0xfffee00d, 0, ele),
    itemHeader(0xfffee0dd, 0, ele),
  ]);
  const head = (le: boolean) => {
    const h = Buffer.alloc(12);
    if (le) (h.writeUInt16LE(0x0009, 0), h.writeUInt16LE(0x1003, 2), h.writeUInt32LE(U, 8));
    else (h.writeUInt16BE(0x0009, 0), h.writeUInt16BE(0x1003, 2), h.writeUInt32BE(U, 8));
    h.write('UN', 4, 'latin1');
    return h;
  };
  const creator = (enc: Encoding) => encodeDataset([{ tag: 0x00090010, vr: 'LO', value: 'UNSEQ' }], enc);
  const input = Buffer.concat([creator(ele), head(true), ileItem]);
  const ebe = convert(TS.explicitLE, TS.explicitBE, [input]);
  t.true(ebe.equals(Buffer.concat([creator(encodingOf(TS.explicitBE)), head(false), ileItem])));
  t.true(convert(TS.explicitBE, TS.explicitLE, [ebe]).equals(input));
  const ileOut = convert(TS.explicitLE, TS.implicitLE, [input]);
  t.deepEqual(listElements(ileOut, encodingOf(TS.implicitLE)).map((e) => e.path), ['00090010', '00091003', '00091003[0].00181310']);
});

test('group length elements are dropped at every level', (t) => {
  const ele = encodingOf(TS.explicitLE);
  const input = encodeDataset([
    { tag: 0x00080000, vr: 'UL', value: [10] },
    { tag: 0x00080060, vr: 'CS', value: 'CT' },
    { tag: 0x00081032, vr: 'SQ', value: [{ elements: [{ tag: 0x00080000, vr: 'UL', value: [10] }, { tag: 0x00080100, vr: 'SH', value: 'P1' }] }] },
  ], ele);
  for (const to of [TS.implicitLE, TS.explicitBE]) {
    t.deepEqual(listElements(convert(TS.explicitLE, to, [input]), encodingOf(to)).map((e) => e.path), ['00080060', '00081032', '00081032[0].00080100']);
  }
});

test('malformed or truncated input fails with a typed error', (t) => {
  const ele = encodingOf(TS.explicitLE);
  const input = encodeDataset(standardElements(), ele);
  const truncated = new TransferSyntaxConverter(TS.explicitLE, TS.implicitLE);
  truncated.push(input.subarray(0, input.length - 10));
  t.is(t.throws(() => truncated.end(), { instanceOf: TransferSyntaxConvertError })?.code, 'truncated');
  const openSeq = new TransferSyntaxConverter(TS.explicitLE, TS.implicitLE);
  openSeq.push(encodeDataset([{ tag: 0x00081110, vr: 'SQ', undefinedLength: true, value: [] }], ele).subarray(0, 12));
  t.is(t.throws(() => openSeq.end(), { instanceOf: TransferSyntaxConvertError })?.code, 'truncated');
  const badVr = Buffer.from(input);
  badVr.write('zz', 4, 'latin1');
  const e = t.throws(() => new TransferSyntaxConverter(TS.explicitLE, TS.explicitBE).push(badVr), { instanceOf: TransferSyntaxConvertError });
  t.is(e?.code, 'malformed');
  t.is(e?.offset, 0);
  // Encapsulated pixel data (undefined-length OB) is not a native dataset.
  const jpeg = encodeDataset(instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: TS.jpegBaseline, encapsulatedJpeg: true, ...UIDS }), ele);
  t.is(t.throws(() => convert(TS.explicitLE, TS.implicitLE, [jpeg]), { instanceOf: TransferSyntaxConvertError })?.code, 'malformed');
});

test('200 MB of pixel data converts in flat memory, chunk by chunk', (t) => {
  const size = 200 * 1024 * 1024;
  const header = encodeDataset(standardElements().filter((e) => e.tag !== 0x7fe00010), encodingOf(TS.explicitLE));
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt32LE(0x00107fe0, 0);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(size, 8);
  const piece = Buffer.alloc(1024 * 1024 + 1); // odd: swap units straddle every chunk boundary
  for (let i = 0; i < piece.length; i++) piece[i] = i & 0xff;
  for (const to of [TS.explicitBE, TS.implicitLE]) {
    const c = new TransferSyntaxConverter(TS.explicitLE, to);
    let outBytes = 0;
    let biggest = 0;
    let firstWords: Buffer | undefined;
    const take = (chunks: Uint8Array[]) => {
      for (const ch of chunks) {
        outBytes += ch.length;
        biggest = Math.max(biggest, ch.length);
      }
    };
    const before = process.memoryUsage();
    let peak = 0;
    take(c.push(Buffer.concat([header, pixelHeader])));
    let sent = 0;
    for (let i = 0; sent < size; i++) {
      const n = Math.min(piece.length, size - sent);
      const out = c.push(piece.subarray(0, n));
      if (firstWords === undefined) firstWords = Buffer.from(out[0].subarray(0, 4));
      take(out);
      sent += n;
      if (i % 16 === 0) {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers - before.heapUsed - before.arrayBuffers);
      }
    }
    take(c.end());
    t.is(piece[0], 0, 'the input is never modified');
    t.is(outBytes, convert(TS.explicitLE, to, [header]).length + (to === TS.implicitLE ? 8 : 12) + size);
    t.true(biggest <= piece.length + 4096, `largest output chunk ${biggest}`);
    t.deepEqual([...firstWords!], to === TS.explicitBE ? [1, 0, 3, 2] : [0, 1, 2, 3]);
    // Swapped output is fresh memory that V8 frees lazily (external memory is collected past a ~64 MiB
    // soft limit), so the bound is well below the 200 MiB payload rather than near zero.
    t.true(peak < 160 * 1024 * 1024, `memory grew by ${peak} bytes`);
    t.log(`${to}: peak growth ${(peak / 1048576).toFixed(1)} MiB`);
  }
});
