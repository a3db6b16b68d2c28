import test from 'ava';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeValue, rewriteHeader, RewriteError, topLevelElements } from '../../protocol/dataset-rewrite.ts';
import type { Change, ElementSpan } from '../../protocol/dataset-rewrite.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { readPart10Header } from '../../protocol/part10.ts';
import { encodeDataset, encodingOf, instanceElements, makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import type { Element } from '../helpers/dicom-files.ts';

const exec = promisify(execFile);
const ENV = { ...process.env, TCP_NODELAY: '1' };
const dir = mkdtempSync(join(tmpdir(), 'dataset-rewrite-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const UIDS = { sopInstanceUid: '1.2.3.4.5', studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.6' };
const SYNTAXES = [
  { name: 'Implicit VR LE', uid: TS.implicitLE, jpeg: false },
  { name: 'Explicit VR LE', uid: TS.explicitLE, jpeg: false },
  { name: 'Explicit VR BE', uid: TS.explicitBE, jpeg: false },
  { name: 'JPEG Baseline (header is Explicit VR LE)', uid: TS.jpegBaseline, jpeg: true },
];

/** A Part-10 file cut where the forwarder cuts it: meta, header (before Pixel Data), the rest. */
function split(file: Buffer) {
  const { meta, datasetOffset } = readPart10Header(file);
  const dataset = file.subarray(datasetOffset);
  const enc = encodingOf(meta.transferSyntaxUid);
  const walker = new DatasetWalker({ ...enc, stopAtPixelData: true });
  walker.push(dataset);
  const headerLength = walker.end().headerLength;
  return { ts: meta.transferSyntaxUid, meta: file.subarray(0, datasetOffset), header: dataset.subarray(0, headerLength), rest: dataset.subarray(headerLength) };
}

function instance(uid: string, jpeg: boolean): Buffer {
  return makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: uid, encapsulatedJpeg: jpeg, withPrivateTags: true, pixelBytes: 512, ...UIDS });
}

/** Top-level dcmdump blocks (an element line plus its indented nested lines), keyed by 8-hex tag. */
async function dumpBlocks(file: Buffer, name: string): Promise<Map<string, string>> {
  const path = join(dir, `${name}.dcm`);
  writeFileSync(path, file);
  const { stdout, stderr } = await exec('dcmdump', ['-E', '+L', path], { env: ENV });
  if (stderr !== '') throw new Error(`dcmdump complained: ${stderr}`);
  const dataset = stdout.slice(stdout.indexOf('# Dicom-Data-Set'));
  const blocks = new Map<string, string>();
  let key = '';
  for (const line of dataset.split('\n')) {
    const m = /^\(([0-9a-f]{4}),([0-9a-f]{4})\)/.exec(line);
    // A top-level sequence's delimiter prints at column 0 too: it belongs to that sequence's block.
    if (m && m[1] !== 'fffe') {
      key = (m[1] + m[2]).toUpperCase();
      blocks.set(key, line);
    } else if (key !== '' && (line.startsWith(' ') || m)) {
      blocks.set(key, blocks.get(key) + '\n' + line);
    }
  }
  return blocks;
}

const hex = (t: number) => t.toString(16).toUpperCase().padStart(8, '0');
const bytesOf = (buf: Uint8Array, s: ElementSpan) => Buffer.from(buf.subarray(s.start, s.end));

const CHANGES: Change[] = [
  { tag: '00100010', action: 'set', value: 'DOE^JANE' },
  { tag: '00080080', action: 'set', value: 'General Hospital' },
  { tag: '00100030', action: 'remove' },
  { tag: '00200013', action: 'set', value: 7 },
  { tag: '00181310', action: 'set', value: [0, 64, 64, 0] },
  { tag: '00091001', action: 'set', vr: 'LO', value: 'changed private' },
  { tag: '00080008', action: 'set', value: ['DERIVED', 'SECONDARY'] },
  { tag: '0020000D', action: 'set', value: '1.2.3.456' },
  { tag: '00189087', action: 'set', value: 1000.5 },
  { tag: '00081110', action: 'remove' },
  { tag: '00321060', action: 'remove' },
  { tag: '00280106', action: 'set', value: 5 },
  { tag: '00280009', action: 'set', value: '00181063' },
];
/** What dcmdump must print for each changed element (private values in Implicit VR print as hex). */
const EXPECTED_DUMP: Record<string, RegExp> = {
  '00100010': /^\(0010,0010\) PN \[DOE\^JANE\]/,
  '00080080': /^\(0008,0080\) LO \[General Hospital\]/,
  '00200013': /^\(0020,0013\) IS \[7\]/,
  '00181310': /^\(0018,1310\) US 0\\64\\64\\0 /,
  '00091001': /^\(0009,1001\) (LO \[changed private\]|\?\? 63\\68\\61\\6e\\67\\65\\64\\20\\70\\72\\69\\76\\61\\74\\65\\20)/,
  '00080008': /^\(0008,0008\) CS \[DERIVED\\SECONDARY\]/,
  '0020000D': /^\(0020,000d\) UI \[1\.2\.3\.456\]/,
  '00189087': /^\(0018,9087\) FD 1000\.5 /,
  '00280106': /^\(0028,0106\) US 5 /,
  '00280009': /^\(0028,0009\) AT \(0018,1063\) /,
};
const REMOVED = new Set(['00100030', '00081110', '00321060']);

for (const s of SYNTAXES) {
  test(`${s.name}: set, add and remove change exactly those elements; dcmdump agrees`, async (t) => {
    const file = instance(s.uid, s.jpeg);
    const { ts, meta, header, rest } = split(file);
    const out = rewriteHeader(header, ts, CHANGES);
    const before = topLevelElements(header, ts);
    const after = topLevelElements(out, ts);
    // Tags: the old ones minus removed plus added, still ascending.
    const changed = new Set(CHANGES.map((c) => c.tag));
    const expectedTags = [...new Set([...before.map((e) => hex(e.tag)), ...Object.keys(EXPECTED_DUMP)])].filter((x) => !REMOVED.has(x)).sort();
    t.deepEqual(after.map((e) => hex(e.tag)), expectedTags);
    // Every untouched element is byte-identical.
    const afterByTag = new Map(after.map((e) => [hex(e.tag), e]));
    for (const e of before) {
      if (changed.has(hex(e.tag))) continue;
      t.deepEqual(bytesOf(out, afterByTag.get(hex(e.tag))!), bytesOf(header, e), hex(e.tag));
    }
    // dcmdump: identical listings except exactly the changed elements, which show the new values.
    const original = await dumpBlocks(file, `${s.uid}-original`);
    const rewritten = await dumpBlocks(Buffer.concat([meta, out, rest]), `${s.uid}-rewritten`);
    for (const [tag, block] of original) if (!changed.has(tag)) t.is(rewritten.get(tag), block, tag);
    for (const tag of REMOVED) t.false(rewritten.has(tag), tag);
    for (const [tag, re] of Object.entries(EXPECTED_DUMP)) t.regex(rewritten.get(tag) ?? '', re, tag);
    t.is(rewritten.size, expectedTags.length + 1); // + Pixel Data
  });
}

test('binary values follow the syntax byte order; text is padded (UI with NUL, others with space)', (t) => {
  const le = encodingOf(TS.explicitLE);
  const be = encodingOf(TS.explicitBE);
  t.deepEqual([...encodeValue('US', [1, 0x203], le)], [1, 0, 3, 2]);
  t.deepEqual([...encodeValue('US', [1, 0x203], be)], [0, 1, 2, 3]);
  t.deepEqual([...encodeValue('SL', -2, be)], [0xff, 0xff, 0xff, 0xfe]);
  t.deepEqual([...encodeValue('AT', ['00181063', 0x7fe00010], be)], [0x00, 0x18, 0x10, 0x63, 0x7f, 0xe0, 0x00, 0x10]);
  t.deepEqual(Buffer.from(encodeValue('FD', 1.5, be)).readDoubleBE(0), 1.5);
  t.is(Buffer.from(encodeValue('UI', '1.2.3', le)).toString('latin1'), '1.2.3\0');
  t.is(Buffer.from(encodeValue('PN', 'DOE^J', le)).toString('latin1'), 'DOE^J ');
  t.is(Buffer.from(encodeValue('DS', [1.25, -3, 0.1 + 0.2], le)).toString('latin1'), '1.25\\-3\\0.3 ');
  t.is(encodeValue('LO', undefined, le).length, 0);
});

test('group lengths present in the header are recomputed', (t) => {
  for (const uid of [TS.implicitLE, TS.explicitLE, TS.explicitBE]) {
    const enc = encodingOf(uid);
    const els = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: uid, withPrivateTags: true, pixelBytes: 0, ...UIDS });
    const withLengths: Element[] = [];
    for (const g of [...new Set(els.map((e) => e.tag >>> 16))]) {
      const members = els.filter((e) => e.tag >>> 16 === g);
      withLengths.push({ tag: (g << 16) >>> 0, vr: 'UL', value: [encodeDataset(members, enc).length] }, ...members);
    }
    const header = encodeDataset(withLengths, enc);
    const out = rewriteHeader(header, uid, [
      { tag: '00100010', action: 'set', value: 'A MUCH LONGER FAMILY NAME^GIVEN' },
      { tag: '00080080', action: 'set', value: 'Added' },
      { tag: '00100030', action: 'remove' },
    ]);
    const spans = topLevelElements(out, uid);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (const gl of spans.filter((s) => (s.tag & 0xffff) === 0)) {
      const size = spans.filter((s) => s.tag >>> 16 === gl.tag >>> 16 && s !== gl).reduce((n, s) => n + s.end - s.start, 0);
      t.is(dv.getUint32(gl.valueStart, enc.littleEndian), size, `${uid} ${hex(gl.tag)}`);
    }
    // An unchanged group keeps its group length bytes.
    const g20 = (b: Uint8Array) => topLevelElements(b, uid).find((s) => s.tag === 0x00200000)!;
    t.deepEqual(bytesOf(out, g20(out)), bytesOf(header, g20(header)));
  }
});

test('text is encoded in the Specific Character Set the dataset declares', (t) => {
  const { header } = split(instance(TS.explicitLE, false)); // declares ISO_IR 100
  const valueOf = (b: Uint8Array, tag: number) => {
    const s = topLevelElements(b, TS.explicitLE).find((e) => e.tag === tag)!;
    return Buffer.from(b.subarray(s.valueStart, s.end));
  };
  const latin = rewriteHeader(header, TS.explicitLE, [{ tag: '00100010', action: 'set', value: 'Müller^Jürgen' }]);
  t.deepEqual(valueOf(latin, 0x00100010), Buffer.from('Müller^Jürgen ', 'latin1'));
  const utf8 = rewriteHeader(header, TS.explicitLE, [
    { tag: '00080005', action: 'set', value: 'ISO_IR 192' },
    { tag: '00100010', action: 'set', value: 'Müller^Jürgen' },
  ]);
  t.deepEqual(valueOf(utf8, 0x00100010), Buffer.from('Müller^Jürgen ', 'utf8'));
  // A value ISO_IR 100 cannot hold: refused, or (the default) the header is converted to UTF-8.
  const err = t.throws(() => rewriteHeader(header, TS.explicitLE, [{ tag: '00100010', action: 'set', value: '山田^太郎' }], 'refuse'), { instanceOf: RewriteError });
  t.is(err?.code, 'charset');
  t.regex(err?.message ?? '', /"山田\^太郎" cannot be written in Specific Character Set "ISO_IR 100"; the rule says charset: refuse/);
  const converted = rewriteHeader(header, TS.explicitLE, [{ tag: '00100010', action: 'set', value: '山田^太郎' }]);
  t.deepEqual(valueOf(converted, 0x00100010), Buffer.from('山田^太郎 ', 'utf8'));
  t.deepEqual(valueOf(converted, 0x00080005), Buffer.from('ISO_IR 192', 'latin1'));
  t.is(t.throws(() => rewriteHeader(header, TS.explicitLE, [{ tag: '00080060', action: 'set', value: 'CTé' }]), { instanceOf: RewriteError })?.code, 'bad-value');
});

test('refused changes throw RewriteError with a code', (t) => {
  const { ts, header } = split(instance(TS.implicitLE, false));
  const code = (changes: Change[]) => (t.throws(() => rewriteHeader(header, ts, changes), { instanceOf: RewriteError }) as RewriteError).code;
  t.is(code([{ tag: '00081110.00081150', action: 'set', value: '1.2' }]), 'nested-change');
  t.is(code([{ tag: '00400275[0]/00401001', action: 'remove' }]), 'nested-change');
  t.is(code([{ tag: 'PatientID', action: 'remove' }]), 'bad-tag');
  t.is(code([{ tag: '7FE00010', action: 'remove' }]), 'not-allowed');
  t.is(code([{ tag: '00020010', action: 'set', value: '1.2' }]), 'not-allowed');
  t.is(code([{ tag: '00100000', action: 'set', value: 4 }]), 'not-allowed');
  t.is(code([{ tag: 'FFFEE000', action: 'remove' }]), 'not-allowed');
  t.is(code([{ tag: '00091001', action: 'set', value: 'no VR in Implicit VR' }]), 'unknown-vr');
  t.is(code([{ tag: '00280010', action: 'set', value: 70000 }]), 'bad-value');
  t.is(code([{ tag: '00280010', action: 'set', value: 'ten' }]), 'bad-value');
  t.is(code([{ tag: '00420011', action: 'set', value: 'x' }]), 'unsupported-vr');
  t.is(code([{ tag: '00081032', action: 'set', value: 'x' }]), 'unsupported-vr');
  t.is((t.throws(() => rewriteHeader(split(instance(TS.explicitLE, false)).header, TS.explicitLE, [{ tag: '00081030', action: 'set', value: 'x'.repeat(70_000) }])) as RewriteError).code, 'value-too-long');
  t.is((t.throws(() => rewriteHeader(header, '1.2.3.4', [])) as RewriteError).code, 'unknown-transfer-syntax');
  t.is((t.throws(() => rewriteHeader(header.subarray(0, header.length - 3), ts, [])) as RewriteError).code, 'malformed');
});

test('no changes return the header as is; later changes to a tag win', (t) => {
  const { ts, header } = split(instance(TS.explicitBE, false));
  t.is(rewriteHeader(header, ts, []), header);
  const out = rewriteHeader(header, ts, [
    { tag: '00100020', action: 'remove' },
    { tag: '00100020', action: 'set', value: 'NEW-ID' },
  ]);
  const s = topLevelElements(out, ts).find((e) => e.tag === 0x00100020)!;
  t.is(Buffer.from(out.subarray(s.valueStart, s.end)).toString('latin1'), 'NEW-ID');
});

test('property: any set/remove mix leaves every other element byte-identical', (t) => {
  const headers = [TS.implicitLE, TS.explicitLE, TS.explicitBE].map((uid) => ({ uid, header: split(instance(uid, false)).header }));
  const pool = ['00080050', '00080080', '00081030', '00100020', '00100021', '00102000', '00180015', '00200010', '00321032', '00400254'];
  const change = fc.record({
    tag: fc.constantFrom(...pool),
    action: fc.constantFrom('set' as const, 'remove' as const),
    value: fc.stringMatching(/^[A-Za-z0-9^]{0,20}$/),
  });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 }), fc.array(change, { maxLength: 8 }), (which, changes) => {
      const { uid, header } = headers[which];
      const out = rewriteHeader(header, uid, changes);
      const last = new Map(changes.map((c) => [c.tag, c]));
      const before = topLevelElements(header, uid);
      const after = new Map(topLevelElements(out, uid).map((e) => [hex(e.tag), e]));
      for (const e of before) {
        if (!last.has(hex(e.tag)) && !bytesOf(out, after.get(hex(e.tag))!).equals(bytesOf(header, e))) return false;
      }
      for (const [tag, c] of last) {
        const e = after.get(tag);
        if (c.action === 'remove' ? e !== undefined : e === undefined) return false;
        if (c.action === 'set') {
          const v = c.value.length % 2 === 1 ? c.value + ' ' : c.value;
          if (Buffer.from(out.subarray(e!.valueStart, e!.end)).toString('latin1') !== v) return false;
        }
      }
      const tags = [...after.keys()];
      return tags.every((x, i) => i === 0 || tags[i - 1] < x);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
