// The dataset parseHeader returns decodes an attribute when it is read (protocol/dataset-lazy.ts).
// What it gives must be exactly what the whole-dataset parse (dcmjs readFile + naturalize) gives, for
// every VR, padding, multiplicity and byte order: the rules engine must not see the difference.
import test from 'ava';
import fc from 'fast-check';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

type Encoding = { uid: string; explicitVr: boolean; littleEndian: boolean };
const SYNTAXES: Encoding[] = [
  { uid: '1.2.840.10008.1.2', explicitVr: false, littleEndian: true },
  { uid: '1.2.840.10008.1.2.1', explicitVr: true, littleEndian: true },
  { uid: '1.2.840.10008.1.2.2', explicitVr: true, littleEndian: false },
];

/** Public tags by VR (the dictionary's VR, so Implicit VR reads them the same). */
const TAGS: [number, string, string][] = [
  [0x00080005, 'CS', 'SpecificCharacterSet'],
  [0x00080008, 'CS', 'ImageType'],
  [0x00080018, 'UI', 'SOPInstanceUID'],
  [0x00080020, 'DA', 'StudyDate'],
  [0x0008002a, 'DT', 'AcquisitionDateTime'],
  [0x00080030, 'TM', 'StudyTime'],
  [0x00080050, 'SH', 'AccessionNumber'],
  [0x00080054, 'AE', 'RetrieveAETitle'],
  [0x00080060, 'CS', 'Modality'],
  [0x00080080, 'LO', 'InstitutionName'],
  [0x00080081, 'ST', 'InstitutionAddress'],
  [0x00080090, 'PN', 'ReferringPhysicianName'],
  [0x00081010, 'SH', 'StationName'],
  [0x0008103e, 'LO', 'SeriesDescription'],
  [0x00100010, 'PN', 'PatientName'],
  [0x00100020, 'LO', 'PatientID'],
  [0x00101010, 'AS', 'PatientAge'],
  [0x001021b0, 'LT', 'AdditionalPatientHistory'],
  [0x00180050, 'DS', 'SliceThickness'],
  [0x00189087, 'FD', 'DiffusionBValue'],
  [0x00200011, 'IS', 'SeriesNumber'],
  [0x00280010, 'US', 'Rows'],
  [0x00280030, 'DS', 'PixelSpacing'],
  [0x0040a160, 'UT', 'TextValue'],
];

const TEXT = fc.stringMatching(/^[A-Z0-9 ^=.\-]{0,12}$/);
const textValue = (vr: string): fc.Arbitrary<string> => {
  switch (vr) {
    case 'DS': return fc.array(fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((n) => String(Number(n.toPrecision(8)))), fc.constant(' 1.5 '), fc.constant('')), { minLength: 1, maxLength: 3 }).map((xs) => xs.join('\\'));
    case 'IS': return fc.array(fc.oneof(fc.integer({ min: -99999, max: 99999 }).map(String), fc.constant(' 42 '), fc.constant('')), { minLength: 1, maxLength: 3 }).map((xs) => xs.join('\\'));
    case 'UI': return fc.stringMatching(/^[12](\.[0-9]{1,5}){1,6}$/);
    case 'ST': case 'LT': case 'UT': return fc.stringMatching(/^[A-Za-z0-9 \\.\-]{0,40}$/);
    case 'PN': return fc.array(fc.stringMatching(/^[A-Z^ ]{0,10}(=[A-Z^]{0,6}){0,2}$/), { minLength: 1, maxLength: 2 }).map((xs) => xs.join('\\'));
    case 'CS': return fc.array(fc.stringMatching(/^[A-Z0-9_ ]{0,8}$/), { minLength: 1, maxLength: 3 }).map((xs) => xs.join('\\'));
    default: return fc.array(TEXT, { minLength: 1, maxLength: 3 }).map((xs) => xs.join('\\'));
  }
};

/** A value's bytes, padded to even length with the VR's pad byte (NUL for UI, space otherwise) or, sometimes, NUL. */
function valueBytes(vr: string, littleEndian: boolean, value: string | number[], nulPad: boolean): Buffer {
  if (Array.isArray(value)) {
    const size = vr === 'FD' ? 8 : 2;
    const out = Buffer.alloc(size * value.length);
    value.forEach((v, i) => {
      if (vr === 'FD') littleEndian ? out.writeDoubleLE(v, i * 8) : out.writeDoubleBE(v, i * 8);
      else littleEndian ? out.writeUInt16LE(v, i * 2) : out.writeUInt16BE(v, i * 2);
    });
    return out;
  }
  const text = Buffer.from(value, 'latin1');
  return text.length % 2 === 0 ? text : Buffer.concat([text, Buffer.from([vr === 'UI' || nulPad ? 0 : 0x20])]);
}

function element(tag: number, vr: string, value: Buffer, enc: Encoding): Buffer {
  const head = Buffer.alloc(enc.explicitVr ? 8 : 8);
  const w16 = (v: number, at: number) => (enc.littleEndian ? head.writeUInt16LE(v, at) : head.writeUInt16BE(v, at));
  w16(tag >>> 16, 0);
  w16(tag & 0xffff, 2);
  if (!enc.explicitVr) {
    head.writeUInt32LE(value.length, 4);
    return Buffer.concat([head, value]);
  }
  head.write(vr, 4, 'latin1');
  if (vr === 'UT') {
    const long = Buffer.alloc(12);
    long.set(head.subarray(0, 6));
    enc.littleEndian ? long.writeUInt32LE(value.length, 8) : long.writeUInt32BE(value.length, 8);
    return Buffer.concat([long, value]);
  }
  w16(value.length, 6);
  return Buffer.concat([head, value]);
}

const datasetArb = fc.record({
  syntax: fc.constantFrom(...SYNTAXES),
  charset: fc.constantFrom(undefined, 'ISO_IR 100', 'ISO_IR 192'),
  elements: fc.uniqueArray(fc.constantFrom(...TAGS.filter(([tag]) => tag !== 0x00080005)), { selector: ([tag]) => tag, minLength: 1, maxLength: TAGS.length }),
  nulPad: fc.boolean(),
}).chain((spec) => fc.tuple(
  fc.constant(spec),
  fc.tuple(...spec.elements.map(([, vr]) => (vr === 'US' ? fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 3 }) : vr === 'FD' ? fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 2 }) : textValue(vr)))),
));

test('property: each attribute read from the lazy dataset equals the whole-dataset parse, in ILE, ELE and EBE', (t) => {
  fc.assert(
    fc.property(datasetArb, ([spec, values]) => {
      const chosen = spec.elements.map((e, i) => ({ tag: e[0], vr: e[1], keyword: e[2], value: values[i] as string | number[] }));
      if (spec.charset !== undefined) chosen.push({ tag: 0x00080005, vr: 'CS', keyword: 'SpecificCharacterSet', value: spec.charset });
      chosen.sort((a, b) => a.tag - b.tag);
      const bytes = Buffer.concat(chosen.map((e) => element(e.tag, e.vr, valueBytes(e.vr, spec.syntax.littleEndian, e.value, spec.nulPad), spec.syntax)));
      const lazy = parseHeader(bytes, spec.syntax.uid).dataset;
      const whole = parseHeader(bytes, spec.syntax.uid).dataset;
      const wholeKeys = Object.keys(whole); // materializes the whole-dataset parse
      for (const e of chosen) {
        t.deepEqual(lazy[e.keyword], whole[e.keyword], `${e.keyword} (${e.vr}) ${JSON.stringify(e.value)} in ${spec.syntax.uid}`);
        t.true(e.keyword in lazy);
        t.true(wholeKeys.includes(e.keyword));
      }
      // Absent attributes are absent in both.
      t.is(lazy.StudyID, undefined);
      t.false('StudyID' in lazy);
    }),
    { numRuns: fuzzRuns(200) },
  );
});

test('sequences, private elements by tag and enumeration answer from the whole-dataset parse', (t) => {
  const enc = SYNTAXES[1];
  const item = Buffer.concat([element(0x00080100, 'SH', valueBytes('SH', true, 'P1', false), enc)]);
  const itemHeader = Buffer.alloc(8);
  itemHeader.writeUInt16LE(0xfffe, 0);
  itemHeader.writeUInt16LE(0xe000, 2);
  itemHeader.writeUInt32LE(item.length, 4);
  const sqValue = Buffer.concat([itemHeader, item]);
  const sq = Buffer.alloc(12);
  sq.writeUInt16LE(0x0008, 0);
  sq.writeUInt16LE(0x1032, 2);
  sq.write('SQ', 4, 'latin1');
  sq.writeUInt32LE(sqValue.length, 8);
  const bytes = Buffer.concat([
    element(0x00080060, 'CS', valueBytes('CS', true, 'CT', false), enc),
    sq, sqValue,
    element(0x00090010, 'LO', valueBytes('LO', true, 'ROUTER TEST', false), enc),
    element(0x00091001, 'LO', valueBytes('LO', true, 'private text', false), enc),
  ]);
  const ds = parseHeader(bytes, enc.uid).dataset;
  t.is(ds.Modality, 'CT');
  t.is(ds['00090010'], 'ROUTER TEST');
  t.is(ds['00091001'], 'private text');
  t.like(ds.ProcedureCodeSequence, [{ CodeValue: 'P1' }]);
  t.deepEqual(Object.keys(ds).filter((k) => k !== '_vrMap').sort(), ['00090010', '00091001', 'Modality', 'ProcedureCodeSequence']);
  t.is(JSON.parse(JSON.stringify(ds)).Modality, 'CT');
});
