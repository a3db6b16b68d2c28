import test from 'ava';
import fc from 'fast-check';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import type { WalkResult } from '../../protocol/dataset-walker.ts';
import { encodeDataset, encodingOf, instanceElements, itemHeader, SOP, TS } from '../helpers/dicom-files.ts';
import type { Element, Encoding } from '../helpers/dicom-files.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const ILE: Encoding = { explicitVr: false, littleEndian: true };
const ELE: Encoding = { explicitVr: true, littleEndian: true };
const EBE: Encoding = { explicitVr: true, littleEndian: false };
const U = 0xffffffff;

const UIDS = { sopInstanceUid: '1.2.3.4.5', studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.6' };
const SYNTAXES = [
  { name: 'Implicit VR LE', ts: TS.implicitLE, jpeg: false },
  { name: 'Explicit VR LE', ts: TS.explicitLE, jpeg: false },
  { name: 'Explicit VR BE', ts: TS.explicitBE, jpeg: false },
  { name: 'JPEG Baseline (encapsulated)', ts: TS.jpegBaseline, jpeg: true },
];

/** A test instance's dataset, its Pixel Data offset and the offsets where top-level elements end. */
function sample(ts: string, jpeg: boolean, pixelBytes = 64) {
  const enc = encodingOf(ts);
  const els = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: ts, encapsulatedJpeg: jpeg, withPrivateTags: true, pixelBytes, ...UIDS });
  const bytes = encodeDataset(els, enc);
  const boundaries = new Set<number>([0]);
  let pixelDataOffset: number | undefined;
  let at = 0;
  for (const el of els) {
    if (el.tag === 0x7fe00010) pixelDataOffset = at;
    at += encodeDataset([el], enc).length;
    boundaries.add(at);
  }
  return { enc, bytes, boundaries, pixelDataOffset };
}

function walk(enc: Encoding, chunks: Uint8Array[], stopAtPixelData = false): WalkResult & { bytesSeen: number } {
  const w = new DatasetWalker({ ...enc, stopAtPixelData });
  for (const c of chunks) w.push(c);
  return { ...w.end(), bytesSeen: w.bytesSeen };
}

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Element header in any encoding (explicit long VRs get the 12-byte form). */
function hdr(tag: number, vr: string, length: number, enc: Encoding): Buffer {
  const b = Buffer.alloc(enc.explicitVr && ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr) ? 12 : 8);
  const w16 = (v: number, o: number) => (enc.littleEndian ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const w32 = (v: number, o: number) => (enc.littleEndian ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  w16(tag >>> 16, 0);
  w16(tag & 0xffff, 2);
  if (!enc.explicitVr) w32(length, 4);
  else {
    b.write(vr, 4, 'latin1');
    if (b.length === 12) w32(length, 8);
    else w16(length, 6);
  }
  return b;
}

const patientId = (enc: Encoding): Buffer => encodeDataset([{ tag: 0x00100020, vr: 'LO', value: 'PID1' }], enc);
const item = (length: number, enc: Encoding) => itemHeader(0xfffee000, length, enc);
const itemEnd = (enc: Encoding) => itemHeader(0xfffee00d, 0, enc);
const seqEnd = (enc: Encoding) => itemHeader(0xfffee0dd, 0, enc);

for (const s of SYNTAXES) {
  test(`${s.name}: a whole instance is complete and Pixel Data is located`, (t) => {
    const { enc, bytes, pixelDataOffset } = sample(s.ts, s.jpeg);
    t.truthy(pixelDataOffset);
    const r = walk(enc, [bytes]);
    t.deepEqual(r, { complete: true, headerLength: pixelDataOffset!, pixelDataOffset, bytesSeen: bytes.length });
  });

  test(`${s.name}: split at every position gives the same result`, (t) => {
    const { enc, bytes } = sample(s.ts, s.jpeg);
    const whole = walk(enc, [bytes]);
    for (let i = 0; i <= bytes.length; i++) {
      const r = walk(enc, [bytes.subarray(0, i), bytes.subarray(i)]);
      if (JSON.stringify(r) !== JSON.stringify(whole)) t.fail(`split at ${i}: ${JSON.stringify(r)}`);
    }
    t.deepEqual(walk(enc, Array.from(bytes, (b) => Uint8Array.of(b))), whole);
  });

  test(`${s.name}: arbitrary chunking gives the same result (property)`, (t) => {
    const { enc, bytes } = sample(s.ts, s.jpeg);
    const whole = walk(enc, [bytes]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 40 }), (cuts) => {
        t.deepEqual(walk(enc, splitAt(bytes, cuts)), whole);
      }),
      { numRuns: fuzzRuns(150) },
    );
  });

  test(`${s.name}: truncated anywhere is incomplete unless cut at a top-level element boundary`, (t) => {
    const { enc, bytes, boundaries } = sample(s.ts, s.jpeg);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = walk(enc, [bytes.subarray(0, cut)]);
      if (r.complete !== boundaries.has(cut)) t.fail(`cut at ${cut}: ${JSON.stringify(r)}`);
      if (r.complete === (r.problem !== undefined)) t.fail(`cut at ${cut}: complete and problem disagree`);
    }
    t.pass();
  });

  test(`${s.name}: stopAtPixelData vouches for the header only`, (t) => {
    const { enc, bytes, pixelDataOffset } = sample(s.ts, s.jpeg);
    const cut = bytes.subarray(0, bytes.length - 3);
    const r = walk(enc, [cut], true);
    t.deepEqual(r, { complete: true, headerLength: pixelDataOffset!, pixelDataOffset, bytesSeen: cut.length });
    t.false(walk(enc, [cut]).complete);
  });
}

test('a dataset without Pixel Data: headerLength is the whole dataset', (t) => {
  const { enc, bytes, pixelDataOffset } = sample(TS.explicitLE, false, 0);
  t.is(pixelDataOffset, undefined);
  t.deepEqual(walk(enc, [bytes]), { complete: true, headerLength: bytes.length, bytesSeen: bytes.length });
  t.deepEqual(walk(ELE, []), { complete: true, headerLength: 0, bytesSeen: 0 });
});

test('pixelDataOffset is known as soon as the Pixel Data header has arrived', (t) => {
  const { enc, bytes, pixelDataOffset } = sample(TS.explicitLE, false, 8192);
  const w = new DatasetWalker(enc);
  w.push(bytes.subarray(0, pixelDataOffset! + 11));
  t.is(w.pixelDataOffset, undefined);
  w.push(bytes.subarray(pixelDataOffset! + 11, pixelDataOffset! + 13));
  t.is(w.pixelDataOffset, pixelDataOffset);
  w.push(bytes.subarray(pixelDataOffset! + 13));
  t.true(w.end().complete);
});

test('only top-level Pixel Data counts; Float Pixel Data (7FE0,0008) counts too', (t) => {
  for (const enc of [ILE, ELE, EBE]) {
    const icon: Element = {
      tag: 0x00880200,
      vr: 'SQ',
      undefinedLength: true,
      value: [{ undefinedLength: true, elements: [{ tag: 0x7fe00010, vr: 'OB', value: new Uint8Array(16) }] }],
    };
    const before = encodeDataset([icon, { tag: 0x00100020, vr: 'LO', value: 'X' }], enc);
    const pixels = encodeDataset([{ tag: 0x7fe00008, vr: 'OF', value: new Uint8Array(16) }], enc);
    const r = walk(enc, [Buffer.concat([before, pixels])]);
    t.deepEqual(r, { complete: true, headerLength: before.length, pixelDataOffset: before.length, bytesSeen: before.length + pixels.length });
  }
});

test('encapsulated Pixel Data with several fragments, and an empty undefined-length sequence', (t) => {
  const els: Element[] = [
    { tag: 0x00081110, vr: 'SQ', undefinedLength: true, value: [] },
    { tag: 0x00081120, vr: 'SQ', value: [{ elements: [] }] }, // defined-length sequence holding an empty item
    { tag: 0x7fe00010, vr: 'OB', value: { fragments: [new Uint8Array(10), new Uint8Array(7), new Uint8Array(1000)] } },
  ];
  const bytes = encodeDataset(els, ELE);
  t.deepEqual(walk(ELE, [bytes]), { complete: true, headerLength: 40, pixelDataOffset: 40, bytesSeen: bytes.length });
});

test('UN of undefined length is a sequence in Implicit VR LE, in Explicit LE and Explicit BE datasets', (t) => {
  const inner = encodeDataset([{ tag: 0x00091011, vr: 'LO', value: 'inside' }], ILE);
  const unValue = Buffer.concat([item(U, ILE), inner, itemEnd(ILE), seqEnd(ILE)]);
  for (const enc of [ELE, EBE]) {
    const bytes = Buffer.concat([hdr(0x00091010, 'UN', U, enc), unValue, patientId(enc)]);
    t.deepEqual(walk(enc, [bytes]), { complete: true, headerLength: bytes.length, bytesSeen: bytes.length }, JSON.stringify(enc));
  }
  // In Implicit VR LE any undefined-length element (here a private one of unknown VR) is a sequence.
  const ile = Buffer.concat([hdr(0x00091010, '', U, ILE), unValue, patientId(ILE)]);
  t.true(walk(ILE, [ile]).complete);
});

test('nested undefined-length sequences are tracked in every syntax', (t) => {
  const deep = (depth: number): Element =>
    depth === 0
      ? { tag: 0x00100020, vr: 'LO', value: 'LEAF' }
      : { tag: 0x00400275, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: depth % 2 === 0, elements: [deep(depth - 1)] }] };
  for (const enc of [ILE, ELE, EBE]) {
    const bytes = encodeDataset([deep(10), { tag: 0x00200013, vr: 'IS', value: '1' }], enc);
    t.true(walk(enc, [bytes]).complete);
    // Dropping the outermost sequence delimiter leaves it open.
    const withoutClose = Buffer.concat([bytes.subarray(0, bytes.length - 10 - 8), bytes.subarray(bytes.length - 10)]);
    t.regex(walk(enc, [withoutClose]).problem ?? '', /expected an item in sequence \(0040,0275\)|never closed/);
  }
});

test('problems are named precisely', (t) => {
  const cases: Array<[string, Encoding, Buffer, RegExp]> = [
    ['header cut', ELE, patientId(ELE).subarray(0, 5), /^truncated inside an element header at offset 0 \(5 byte\(s\) of it present\)$/],
    ['value cut', ELE, patientId(ELE).subarray(0, 10), /^truncated: value of \(0010,0020\) at offset 0 lacks 2 byte\(s\); data ends at 10$/],
    ['length past the end', ILE, Buffer.concat([hdr(0x00100020, 'LO', 0x1000, ILE), Buffer.alloc(4)]), /value of \(0010,0020\) at offset 0 lacks 4092 byte/],
    [
      'sequence never closed',
      ELE,
      Buffer.concat([hdr(0x00081110, 'SQ', U, ELE), item(U, ELE), patientId(ELE), itemEnd(ELE)]),
      /^undefined-length sequence \(0008,1110\) opened at offset 0 never closed; data ends at 40$/,
    ],
    ['item never closed', ILE, Buffer.concat([hdr(0x00081110, '', U, ILE), item(U, ILE), patientId(ILE)]), /^undefined-length item \(FFFE,E000\) opened at offset 8 never closed/],
    [
      'undefined item inside a defined-length sequence',
      ELE,
      Buffer.concat([hdr(0x00081110, 'SQ', 8 + 12, ELE), item(U, ELE), patientId(ELE), patientId(ELE)]),
      /undefined-length item \(FFFE,E000\) opened at offset 12 not closed before the enclosing defined length ends at 32/,
    ],
    ['item longer than its sequence', EBE, Buffer.concat([hdr(0x00081110, 'SQ', 20, EBE), item(24, EBE), Buffer.alloc(24)]), /item at offset 12 \(length 24\) runs past the defined length ending at 32/],
    [
      'element longer than its item',
      ELE,
      Buffer.concat([hdr(0x00081110, 'SQ', 8 + 12, ELE), item(12, ELE), hdr(0x00100020, 'LO', 6, ELE), Buffer.alloc(6)]),
      /value of \(0010,0020\) at offset 20 \(length 6\) runs past the defined length ending at 32/,
    ],
    ['defined item cut short', ELE, Buffer.concat([hdr(0x00081110, 'SQ', 8 + 24, ELE), item(24, ELE), patientId(ELE)]), /item \(FFFE,E000\) at offset 12 has a defined length ending at 44 but data ends at 32/],
    ['sequence delimiter at top level', ELE, seqEnd(ELE), /^unexpected \(FFFE,E0DD\) at offset 0 at top level$/],
    ['item at top level', ILE, item(0, ILE), /^unexpected \(FFFE,E000\) at offset 0 at top level$/],
    ['item delimiter in a defined-length item', ELE, Buffer.concat([hdr(0x00081110, 'SQ', 16, ELE), item(8, ELE), itemEnd(ELE)]), /unexpected \(FFFE,E00D\) at offset 20 inside a defined-length item/],
    ['sequence delimiter in a defined-length sequence', ELE, Buffer.concat([hdr(0x00081110, 'SQ', 8, ELE), seqEnd(ELE)]), /sequence delimiter at offset 12 inside defined-length sequence \(0008,1110\)/],
    ['element where an item belongs', ILE, Buffer.concat([hdr(0x00081110, '', U, ILE), patientId(ILE)]), /expected an item in sequence \(0008,1110\) but found \(0010,0020\) at offset 8/],
    ['invalid VR', ELE, Buffer.concat([Buffer.from('10002000', 'hex'), Buffer.from('zz'), Buffer.from('0000', 'hex')]), /^invalid VR "zz" for \(0010,0020\) at offset 0$/],
    ['undefined length OB outside Pixel Data', ELE, Buffer.concat([hdr(0x00091010, 'OB', U, ELE), seqEnd(ELE)]), /undefined length is not allowed for VR OB of \(0009,1010\)/],
    ['fragment of undefined length', ELE, Buffer.concat([hdr(0x7fe00010, 'OB', U, ELE), item(0, ELE), item(U, ELE)]), /pixel data fragment at offset 20 has undefined length/],
    ['encapsulated Pixel Data never closed', ELE, Buffer.concat([hdr(0x7fe00010, 'OB', U, ELE), item(0, ELE), item(2, ELE), Buffer.alloc(2)]), /undefined-length encapsulated pixel data \(7FE0,0010\) opened at offset 0 never closed/],
    ['non-item inside encapsulated Pixel Data', ELE, Buffer.concat([hdr(0x7fe00010, 'OB', U, ELE), patientId(ELE)]), /expected an item in encapsulated pixel data but found \(0010,0020\)/],
    ['delimiter with a length', ELE, Buffer.concat([hdr(0x00081110, 'SQ', U, ELE), itemHeader(0xfffee0dd, 4, ELE)]), /sequence delimiter at offset 12 has non-zero length/],
  ];
  for (const [name, enc, bytes, re] of cases) {
    const r = walk(enc, [bytes]);
    t.false(r.complete, name);
    t.regex(r.problem ?? '', re, name);
  }
});

test('nesting depth is bounded', (t) => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 200; i++) parts.push(hdr(0x00400275, 'SQ', U, ELE), item(U, ELE));
  t.regex(walk(ELE, [Buffer.concat(parts)]).problem ?? '', /sequences nested deeper than 256/);
});

test('after a problem the walker only counts bytes', (t) => {
  const w = new DatasetWalker(ELE);
  w.push(seqEnd(ELE));
  const first = w.problem;
  w.push(patientId(ELE));
  t.is(w.problem, first);
  t.is(w.bytesSeen, 8 + 12);
  t.deepEqual(w.end(), { complete: false, problem: first, headerLength: 20 });
});

test('random bytes never throw and give a consistent result (property)', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(ILE, ELE, EBE),
      fc.uint8Array({ maxLength: 600 }),
      fc.array(fc.nat(600), { maxLength: 6 }),
      fc.boolean(),
      (enc, bytes, cuts, stop) => {
        const r = walk(enc, splitAt(bytes, cuts.map((c) => c % (bytes.length + 1))), stop);
        return (
          r.complete === (r.problem === undefined) &&
          r.bytesSeen === bytes.length &&
          r.headerLength <= bytes.length &&
          (r.pixelDataOffset === undefined || r.pixelDataOffset === r.headerLength)
        );
      },
    ),
    { numRuns: fuzzRuns(2000) },
  );
  t.pass();
});

test('mutated valid datasets never throw (property)', (t) => {
  const samples = SYNTAXES.map((s) => sample(s.ts, s.jpeg));
  fc.assert(
    fc.property(fc.nat(samples.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (i, flips) => {
      const { enc, bytes } = samples[i];
      const copy = Buffer.from(bytes);
      for (const [at, v] of flips) copy[at % copy.length] = v;
      const r = walk(enc, [copy]);
      return r.complete === (r.problem === undefined) && r.bytesSeen === copy.length;
    }),
    { numRuns: fuzzRuns(1000) },
  );
  t.pass();
});

test('values are skipped by counting: 256 MiB of Pixel Data in 1 MiB chunks, flat memory', (t) => {
  const size = 256 * 1024 * 1024;
  const head = Buffer.concat([patientId(ELE), hdr(0x7fe00010, 'OW', size, ELE)]);
  const chunk = new Uint8Array(1024 * 1024);
  const w = new DatasetWalker(ELE);
  const heapBefore = process.memoryUsage().heapUsed;
  w.push(head);
  for (let i = 0; i < 256; i++) w.push(chunk);
  t.deepEqual(w.end(), { complete: true, headerLength: 12, pixelDataOffset: 12 });
  t.is(w.bytesSeen, head.length + size);
  // The same 1 MiB chunk 256 times: the walker holds none of it (speed is the benchmark's business).
  t.true(process.memoryUsage().heapUsed - heapBefore < 8 * 1024 * 1024);
});
