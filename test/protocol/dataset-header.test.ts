import test from 'ava';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync, deflateRawSync } from 'node:zlib';
import { log } from 'dcmjs';
import { DatasetParseError, parseHeader } from '../../protocol/dataset-header.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { readPart10Header } from '../../protocol/part10.ts';
import { datasetOf, encodeDataset, encodingOf, instanceElements, makeInstance, PHILIPS_PET_CREATOR, PRIVATE_CREATOR, SOP, TS } from '../helpers/dicom-files.ts';
import type { Element } from '../helpers/dicom-files.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

// dcmjs warns on the console when it decodes leniently; parseHeader reports that in `warnings`.
log.setLevel('error');

const OPTS = {
  sopClassUid: SOP.pet,
  sopInstanceUid: '1.2.826.0.1.3680043.2.1.1',
  studyInstanceUid: '1.2.826.0.1.3680043.2.1',
  seriesInstanceUid: '1.2.826.0.1.3680043.2.1.2',
  patientId: 'P-77',
  patientName: 'DOE^JANE',
  issuerOfPatientId: 'ISSUER',
  modality: 'PT',
  accessionNumber: 'A123',
  studyDate: '20230405',
  studyDescription: 'PET CT WHOLE BODY',
  bodyPartExamined: 'WHOLEBODY',
  seriesNumber: 7,
  instanceNumber: 42,
  withPrivateTags: true,
  pixelBytes: 2048,
};

const EXPECTED = {
  sopClassUid: OPTS.sopClassUid,
  sopInstanceUid: OPTS.sopInstanceUid,
  studyInstanceUid: OPTS.studyInstanceUid,
  seriesInstanceUid: OPTS.seriesInstanceUid,
  patientId: 'P-77',
  patientName: 'DOE^JANE',
  issuerOfPatientId: 'ISSUER',
  modality: 'PT',
  studyDate: '20230405',
  studyDescription: 'PET CT WHOLE BODY',
  seriesNumber: 7,
  instanceNumber: 42,
  accessionNumber: 'A123',
  bodyPartExamined: 'WHOLEBODY',
  specificCharacterSet: 'ISO_IR 100',
  warnings: [],
};

/** The prefix a Storage SCP would keep: the bytes the walker reports before Pixel Data. */
function prefixOf(dataset: Uint8Array, ts: string): Uint8Array {
  const w = new DatasetWalker(encodingOf(ts));
  w.push(dataset);
  const r = w.end();
  if (!r.complete) throw new Error(r.problem);
  return dataset.subarray(0, r.headerLength);
}

function withoutDataset<T extends { dataset: unknown }>(k: T): Omit<T, 'dataset'> {
  const { dataset: _ignored, ...rest } = k;
  return rest;
}

for (const [name, ts, jpeg] of [
  ['Implicit VR LE', TS.implicitLE, false],
  ['Explicit VR LE', TS.explicitLE, false],
  ['Explicit VR BE', TS.explicitBE, false],
  ['JPEG Baseline', TS.jpegBaseline, true],
] as const) {
  test(`${name}: keys come out of the prefix before Pixel Data`, (t) => {
    const file = makeInstance({ ...OPTS, transferSyntaxUid: ts, encapsulatedJpeg: jpeg });
    const dataset = datasetOf(file);
    const prefix = prefixOf(dataset, ts);
    t.true(prefix.length < dataset.length);
    const keys = parseHeader(prefix, ts);
    t.deepEqual(withoutDataset(keys), EXPECTED);
    // The whole dataset gives the same answer: decoding stops at Pixel Data.
    t.deepEqual(withoutDataset(parseHeader(dataset, ts)), EXPECTED);
    const ds = keys.dataset;
    t.false('PixelData' in ds);
    t.is(ds.SpecificCharacterSet, 'ISO_IR 100');
    t.is(ds.SOPInstanceUID, OPTS.sopInstanceUid);
    t.is(ds.BitsAllocated, jpeg ? 8 : 16);
    // Private elements are kept under their tags; Implicit VR leaves them as bytes (no private dictionary).
    const str = (v: unknown): string => {
      const one = Array.isArray(v) ? v[0] : v;
      return one instanceof ArrayBuffer ? Buffer.from(one).toString('latin1').trim() : String(one);
    };
    t.is(str(ds['00090010']), PRIVATE_CREATOR);
    t.is(str(ds['70530010']), PHILIPS_PET_CREATOR);
    t.is(str(ds['70531000']), '0.000123');
    const refStudy = ds.ReferencedStudySequence as Array<Record<string, unknown>>;
    t.is(refStudy[0].ReferencedSOPInstanceUID, OPTS.studyInstanceUid);
    const req = ds.RequestAttributesSequence as Array<Record<string, unknown>>;
    t.is((req[0].ScheduledProtocolCodeSequence as Array<Record<string, unknown>>)[0].CodeValue, 'PR1');
  });
}

test('files converted by DCMTK (explicit lengths, big endian, deflated) give the same keys', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dataset-header-'));
  try {
    const src = join(dir, 'src.dcm');
    writeFileSync(src, makeInstance({ ...OPTS, transferSyntaxUid: TS.explicitLE }));
    for (const args of [['+ti', '+e'], ['+te', '-e'], ['+tb', '+e'], ['+td']]) {
      const out = join(dir, `out${args.join('')}.dcm`);
      execFileSync('dcmconv', [...args, src, out], { env: { ...process.env, TCP_NODELAY: '1' } });
      const bytes = readFileSync(out);
      const { meta, datasetOffset } = readPart10Header(bytes);
      let dataset: Uint8Array = bytes.subarray(datasetOffset);
      // Deflated: the caller inflates (PS3.5 A.5, raw deflate) and walks/parses the Explicit VR LE result.
      if (meta.transferSyntaxUid === TS.deflatedLE) dataset = inflateRawSync(dataset);
      const keys = parseHeader(prefixOf(dataset, meta.transferSyntaxUid), meta.transferSyntaxUid);
      t.deepEqual(withoutDataset(keys), EXPECTED, args.join(' '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the deflated syntax is decoded as Explicit VR LE once inflated', (t) => {
  const dataset = datasetOf(makeInstance({ ...OPTS, transferSyntaxUid: TS.explicitLE, pixelBytes: 0 }));
  const roundTripped = inflateRawSync(deflateRawSync(dataset));
  t.deepEqual(withoutDataset(parseHeader(roundTripped, TS.deflatedLE)), EXPECTED);
});

// Raw byte values are NUL-padded by the test encoder, which PN decoding must tolerate.
function withCharset(charset: string | string[], name: Uint8Array | string): Element[] {
  const els = instanceElements({ ...OPTS, transferSyntaxUid: TS.explicitLE, pixelBytes: 0 });
  return els.map((e) => (e.tag === 0x00080005 ? { ...e, value: charset } : e.tag === 0x00100010 ? { ...e, value: name } : e));
}

test('names are decoded in the declared character set', (t) => {
  const latin1 = parseHeader(encodeDataset(withCharset('ISO_IR 100', Buffer.from('MÜLLER^HANS', 'latin1')), encodingOf(TS.explicitLE)), TS.explicitLE);
  t.is(latin1.patientName, 'MÜLLER^HANS');
  const utf8 = parseHeader(encodeDataset(withCharset('ISO_IR 192', Buffer.from('MÜLLER^HANS', 'utf8')), encodingOf(TS.explicitLE)), TS.explicitLE);
  t.is(utf8.patientName, 'MÜLLER^HANS');
  t.is(utf8.specificCharacterSet, 'ISO_IR 192');
  t.deepEqual(utf8.warnings, []);
});

test('PN with several component groups keeps them', (t) => {
  const k = parseHeader(encodeDataset(withCharset('ISO_IR 192', Buffer.from('YAMADA^TARO=山田^太郎', 'utf8')), encodingOf(TS.explicitLE)), TS.explicitLE);
  t.is(k.patientName, 'YAMADA^TARO=山田^太郎');
});

test('ISO 2022 code extensions are decoded: PS3.5 H.3.1, \\ISO 2022 IR 87', (t) => {
  const h31 = Buffer.from('Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B', 'latin1');
  const k = parseHeader(encodeDataset(withCharset(['', 'ISO 2022 IR 87'], h31), encodingOf(TS.explicitLE)), TS.explicitLE);
  t.is(k.patientName, 'Yamada^Tarou=山田^太郎=やまだ^たろう');
  t.is(k.specificCharacterSet, '\\ISO 2022 IR 87');
  t.deepEqual(k.dataset.SpecificCharacterSet, ['', 'ISO 2022 IR 87']);
  t.is(k.patientId, 'P-77');
  t.is(k.sopInstanceUid, OPTS.sopInstanceUid);
  t.deepEqual(k.warnings, []);
});

test('ISO_IR 203 (which dcmjs does not know) decodes, at the top level', (t) => {
  const k = parseHeader(encodeDataset(withCharset('ISO_IR 203', Buffer.from([0x4d, 0xa4, 0x20, 0xbd, 0x5e, 0x41])), encodingOf(TS.explicitLE)), TS.explicitLE);
  t.is(k.patientName, 'M€ œ^A');
  t.deepEqual(k.warnings, []);
});

test('an unknown character set term is reported, and ASCII still decodes', (t) => {
  const k = parseHeader(encodeDataset(withCharset('ISO_IR 999', 'DOE^JOHN'), encodingOf(TS.implicitLE)), TS.implicitLE);
  t.is(k.patientName, 'DOE^JOHN');
  t.is(k.warnings.length, 1);
  t.regex(k.warnings[0], /unknown Specific Character Set "ISO_IR 999"/);
});

test('missing attributes are simply absent', (t) => {
  const els: Element[] = [
    { tag: 0x00080016, vr: 'UI', value: SOP.secondaryCapture },
    { tag: 0x00080018, vr: 'UI', value: '1.2.3' },
    { tag: 0x00200013, vr: 'IS', value: '' },
  ];
  const k = parseHeader(encodeDataset(els, encodingOf(TS.implicitLE)), TS.implicitLE);
  t.deepEqual(withoutDataset(k), { sopClassUid: SOP.secondaryCapture, sopInstanceUid: '1.2.3', warnings: [] });
});

test('malformed or mismatched input throws DatasetParseError', (t) => {
  const dataset = datasetOf(makeInstance({ ...OPTS, transferSyntaxUid: TS.explicitLE }));
  const prefix = prefixOf(dataset, TS.explicitLE);
  for (const [bytes, ts, re] of [
    [prefix.subarray(0, 100), TS.explicitLE, /truncated/],
    [prefix, TS.implicitLE, /malformed dataset \(1\.2\.840\.10008\.1\.2\)/],
    [prefix, TS.explicitBE, /malformed/],
    [prefix, 'not a uid', /invalid transfer syntax UID/],
    [Buffer.from('0800050043531000', 'hex'), TS.explicitLE, /truncated/],
  ] as const) {
    const err = t.throws(() => parseHeader(bytes, ts), { instanceOf: DatasetParseError });
    t.regex(err?.message ?? '', re);
    t.is(err?.transferSyntaxUid, ts);
  }
});

test('random bytes give keys or DatasetParseError, nothing else (property)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(TS.implicitLE, TS.explicitLE, TS.explicitBE), (bytes, ts) => {
      try {
        parseHeader(bytes, ts);
        return true;
      } catch (err) {
        return err instanceof DatasetParseError;
      }
    }),
    { numRuns: fuzzRuns(1000) },
  );
  t.pass();
});
