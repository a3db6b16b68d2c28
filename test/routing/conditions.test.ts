import test from 'ava';
import fc from 'fast-check';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { evaluateWhen } from '../../routing/conditions.ts';
import { parseRuleFile } from '../../routing/rules-loader.ts';
import type { Association, ConditionTrace, RoutingInput } from '../../routing/rule.types.ts';
import { datasetOf, makeInstance, SOP, TS } from '../helpers/dicom-files.ts';

const ASSOCIATION: Association = { callingAeTitle: 'CT_SCANNER_1', calledAeTitle: 'ROUTER', listener: 'main', remoteAddress: '10.1.2.3' };

/** Naturalized like dcmjs does it: multi-valued as arrays, PN as objects, IS/DS as numbers. */
const DATASET: Record<string, unknown> = {
  _vrMap: {},
  SpecificCharacterSet: 'ISO_IR 100',
  ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
  StudyDate: '20240115',
  StudyTime: '101530.25',
  AcquisitionDateTime: '20240115101530.5+0100',
  AccessionNumber: 'ACC0001 ',
  Modality: 'CT',
  ReferringPhysicianName: [],
  StudyDescription: 'CHEST ROUTINE',
  InstitutionName: 'General\0',
  ReferencedStudySequence: [{ _vrMap: {}, ReferencedSOPClassUID: '1.2.840.10008.3.1.2.3.1' }],
  PatientName: [{ Alphabetic: 'DOE^JOHN', Ideographic: 'ドウ^ジョン' }],
  PatientID: '000123',
  SeriesNumber: 3,
  SliceThickness: 1.25,
  Rows: 512,
  '00090010': 'ROUTER TEST',
  '00091001': 'private text',
};

/** Evaluates the `when` of a one-rule file against a dataset (and association). */
function check(when: string, dataset: Record<string, unknown> = DATASET, association: Association = ASSOCIATION): { ok: boolean; lines: ConditionTrace[] } {
  const [rule] = parseRuleFile(`rules:\n  - name: t\n    when:\n${when.replace(/^/gm, '      ')}\n    then: {}\n`, 't.yaml', { peers: [] });
  const input: RoutingInput = { association, dataset };
  return evaluateWhen(rule.when, input);
}
const holds = (when: string, dataset?: Record<string, unknown>, association?: Association) => check(when, dataset, association).ok;

test('equals: text after trimming padding, case-sensitive; numbers numerically', (t) => {
  t.true(holds('attribute: Modality\nequals: CT'));
  t.false(holds('attribute: Modality\nequals: ct'));
  t.true(holds('attribute: AccessionNumber\nequals: ACC0001'), 'trailing space padding');
  t.true(holds('attribute: InstitutionName\nequals: General'), 'trailing NUL padding');
  t.true(holds("attribute: AccessionNumber\nequals: ' ACC0001 '"), 'the configured value is trimmed too');
  t.true(holds('attribute: SeriesNumber\nequals: 3'));
  t.true(holds("attribute: SeriesNumber\nequals: '003'"), 'IS compares numerically');
  t.true(holds('attribute: SliceThickness\nequals: 1.250'));
  t.false(holds('attribute: SliceThickness\nequals: 1.2'));
  t.true(holds('attribute: PatientID\nequals: 123'), 'a YAML number compares numerically, even with a text VR');
  t.true(holds("attribute: PatientID\nequals: '000123'"));
  t.false(holds("attribute: PatientID\nequals: '123'"), 'a text compares as text');
  t.false(holds('attribute: Modality\nequals: 3'), 'a non-number never equals a number');
});

test('multi-valued attributes match if any value matches; PN compares as Alphabetic=Ideographic', (t) => {
  t.true(holds('attribute: ImageType\nequals: AXIAL'));
  t.false(holds('attribute: ImageType\nequals: DERIVED'));
  t.true(holds("attribute: PatientName\nequals: 'DOE^JOHN=ドウ^ジョン'"));
  t.true(holds("attribute: PatientName\nwildcard: 'DOE^*'"));
  t.true(holds("attribute: PatientName\nregex: '^DOE\\^'"));
  t.true(holds("attribute: ReferringPhysicianName\nexists: false"), 'present but empty counts as missing');
});

test('in', (t) => {
  t.true(holds('attribute: Modality\nin: [MR, CT]'));
  t.false(holds('attribute: Modality\nin: [MR, PT]'));
  t.true(holds('attribute: SeriesNumber\nin: [1, 3]'));
  t.true(holds('attribute: ImageType\nin: [LOCALIZER, AXIAL]'));
});

test('wildcard: * and ? over the whole value, other characters literal', (t) => {
  t.true(holds("attribute: StudyDescription\nwildcard: 'CHEST*'"));
  t.true(holds("attribute: StudyDescription\nwildcard: '*ROUT?NE'"));
  t.false(holds("attribute: StudyDescription\nwildcard: 'CHEST'"), 'whole value');
  t.false(holds("attribute: StudyDescription\nwildcard: 'CHEST?'"));
  t.true(holds("attribute: SOPClassUID\nwildcard: '1.2.840.10008.5.1.4.1.1.*'"));
  t.false(holds("attribute: SOPClassUID\nwildcard: '1x2*'"), "'.' is literal");
  t.true(holds("attribute: Modality\nwildcard: '*'"));
});

test('regex: searched anywhere, JavaScript syntax incl. (?i:...)', (t) => {
  t.true(holds("attribute: PatientID\nregex: '^0+'"));
  t.true(holds("attribute: StudyDescription\nregex: 'ROUT'"));
  t.false(holds("attribute: StudyDescription\nregex: '^ROUT'"));
  t.true(holds("attribute: StudyDescription\nregex: '(?i:chest)'"));
  t.true(holds("attribute: SeriesNumber\nregex: '^3$'"), 'numbers are matched as their text');
});

test('range: dates, times, date-times and numbers at the precision of each bound', (t) => {
  t.true(holds('attribute: StudyDate\nrange: { from: 20240101, to: 20241231 }'));
  t.true(holds("attribute: StudyDate\nrange: { from: '2024', to: '2024' }"), 'a whole year');
  t.true(holds("attribute: StudyDate\nrange: { to: '202401' }"), 'to a whole month, inclusive');
  t.false(holds("attribute: StudyDate\nrange: { to: '20240114' }"));
  t.true(holds("attribute: StudyDate\nrange: { from: '20240115' }"), 'inclusive');
  t.true(holds("attribute: StudyTime\nrange: { from: '08', to: '10' }"), '10:15 is within hour 10');
  t.true(holds("attribute: StudyTime\nrange: { from: '08', to: '1015' }"), 'to the minute 10:15, inclusive');
  t.false(holds("attribute: StudyTime\nrange: { from: '08', to: '1014' }"));
  t.true(holds("attribute: StudyTime\nrange: { from: '1015', to: '1015' }"));
  t.false(holds("attribute: StudyTime\nrange: { from: '101530.3' }"), 'fractions compare');
  t.true(holds("attribute: StudyTime\nrange: { from: '101530.2' }"));
});

test('range: legacy values, numbers, date-times, and values of the wrong kind', (t) => {
  t.true(holds("attribute: StudyTime\nrange: { from: '1000', to: '1100' }", { ...DATASET, StudyTime: '10:15:30' }), 'ACR-NEMA time with colons');
  t.true(holds("attribute: StudyDate\nrange: { from: '2024' }", { ...DATASET, StudyDate: '2024.01.15' }), 'ACR-NEMA date with dots');
  t.true(holds('attribute: SliceThickness\nrange: { from: 1, to: 1.25 }'));
  t.false(holds('attribute: SliceThickness\nrange: { from: 1.3 }'));
  t.true(holds('attribute: Rows\nrange: { from: 256 }'));
  t.true(holds("attribute: AcquisitionDateTime\nrange: { from: '20240115', to: '2024011510' }"), 'time zone offset ignored');
  t.false(holds("attribute: AcquisitionDateTime\nrange: { from: '202401151016' }"));
  t.true(holds("attribute: AcquisitionDateTime\nrange: { from: '202401151015' }"));
  const notADate = check('attribute: StudyDate\nrange: { from: 20240101 }', { ...DATASET, StudyDate: 'unknown' });
  t.false(notADate.ok);
  t.is(notADate.lines[0].why, "was 'unknown', not a date");
});

test('exists / missing, sequences', (t) => {
  t.true(holds('attribute: Modality\nexists: true'));
  t.false(holds('attribute: Modality\nexists: false'));
  t.true(holds('attribute: PatientComments\nexists: false'));
  t.false(holds('attribute: PatientComments\nexists: true'));
  t.true(holds('attribute: ReferencedStudySequence\nexists: true'));
  t.false(holds('attribute: ReferencedStudySequence\nexists: true', { ...DATASET, ReferencedStudySequence: [] }), 'an empty sequence is missing');
  const seq = check("tag: '(0008,1110)'\nexists: false");
  t.false(seq.ok);
  t.is(seq.lines[0].why, 'a sequence of 1 item');
});

test('tags: by tag text, standard and private without creator', (t) => {
  t.true(holds("tag: '(0008,0060)'\nequals: CT"));
  t.true(holds("tag: '00080060'\nin: [CT]"));
  t.true(holds("tag: '(0009,1001)'\nequals: private text"));
  t.true(holds("tag: '(0009,0010)'\nequals: ROUTER TEST"));
});

test('private tags by creator: the block is found wherever the creator reserved it', (t) => {
  const when = "tag: '(0009,xx01)'\ncreator: ROUTER TEST\nequals: private text";
  t.true(holds(when));
  // the same creator in block 0x42: (0009,4201)
  const moved = { ...DATASET, '00090010': 'OTHER CREATOR', '00091001': 'something else', '00090042': 'ROUTER TEST', '00094201': 'private text' };
  const r = check(when, moved);
  t.true(r.ok);
  t.is(r.lines[0].why, "was 'private text' at (0009,4201)");
  t.is(r.lines[0].text, "(0009,xx01) [ROUTER TEST] = 'private text'");
  const none = check(when, { ...DATASET, '00090010': 'OTHER CREATOR' });
  t.false(none.ok);
  t.is(none.lines[0].why, "no private block of creator 'ROUTER TEST' in group 0009");
  const absent = check("tag: '(0009,xx07)'\ncreator: ROUTER TEST\nexists: false");
  t.true(absent.ok);
  t.is(absent.lines[0].why, 'absent (no (0009,1007))');
});

test('private tags by creator in real instances: Implicit VR (raw bytes) and Explicit VR (decoded) alike', (t) => {
  for (const ts of [TS.implicitLE, TS.explicitLE, TS.explicitBE]) {
    const dataset = parseHeader(datasetOf(makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: ts, withPrivateTags: true, pixelBytes: 0 })), ts).dataset;
    t.true(holds("tag: '(0009,xx01)'\ncreator: ROUTER TEST\nequals: private text", dataset), ts);
    t.true(holds("tag: '(0009,xx02)'\ncreator: ROUTER TEST\nrange: { from: 42, to: 43 }", dataset), `${ts} DS as a number`);
    t.true(holds("tag: '(0009,xx02)'\ncreator: ROUTER TEST\nequals: 42.5", dataset), ts);
    t.true(holds("tag: '(7053,xx09)'\ncreator: Philips PET Private Group\nequals: 1.5", dataset), ts);
    t.true(holds("tag: '(7053,xx00)'\ncreator: Philips PET Private Group\nregex: '^0\\.0001'", dataset), ts);
    t.true(holds('attribute: PatientName\nequals: TEST^PATIENT', dataset), ts);
    t.true(holds('attribute: SeriesNumber\nequals: 1', dataset), ts);
  }
});

test('association conditions: AE titles (trimmed), listener, addresses and CIDR ranges, TLS subject', (t) => {
  t.true(holds('callingAe: CT_SCANNER_1'));
  t.true(holds('callingAe: CT_SCANNER_1', DATASET, { ...ASSOCIATION, callingAeTitle: 'CT_SCANNER_1    ' }));
  t.true(holds('callingAe: CT_*'));
  t.true(holds('callingAe: CT_SCANNER_?'));
  t.false(holds('callingAe: MR*'));
  t.true(holds('calledAe: { in: [ROUTER, ROUTER2] }'));
  t.true(holds("calledAe: { regex: '^ROU' }"));
  t.true(holds('listener: main'));
  t.false(holds('listener: { in: [tls, other] }'));
  t.true(holds('sourceAddress: 10.0.0.0/8'));
  t.true(holds('sourceAddress: [192.168.0.0/16, 10.1.2.3]'));
  t.false(holds('sourceAddress: 10.1.2.4'));
  t.true(holds('sourceAddress: 10.0.0.0/8', DATASET, { ...ASSOCIATION, remoteAddress: '::ffff:10.9.9.9' }), 'IPv4-mapped IPv6');
  t.true(holds('sourceAddress: "fd00::/8"', DATASET, { ...ASSOCIATION, remoteAddress: 'fd00::1' }));
  t.false(holds('sourceAddress: "fd00::/8"'));
  const tls = check("tlsSubject: { regex: 'CN=ct1' }");
  t.false(tls.ok);
  t.is(tls.lines[0].why, 'no TLS peer certificate (plain TCP association)');
  t.true(holds('not: { tlsSubject: "*" }'), 'documented: not tlsSubject always holds until TLS exists');
  t.true(holds("tlsSubject: { regex: 'CN=ct1' }", DATASET, { ...ASSOCIATION, tlsSubject: 'C=DE, O=Hospital, CN=ct1' }));
});

test('all / any / not nest, and every condition is traced with its depth', (t) => {
  const r = check(`all:
  - attribute: Modality
    equals: CT
  - any:
      - callingAe: MR*
      - not: { attribute: StudyDescription, wildcard: '*HEAD*' }
  - not:
      any:
        - attribute: PatientID
          equals: X
        - attribute: Modality
          equals: MR`);
  t.true(r.ok);
  t.deepEqual(r.lines.map((l) => [l.depth, l.ok, l.text, l.why]), [
    [0, true, 'all of 3', 'all 3 hold'],
    [1, true, 'Modality = CT', "was 'CT'"],
    [1, true, 'any of 2', '1 of 2 hold'],
    [2, false, 'callingAe matches wildcard MR*', "was 'CT_SCANNER_1'"],
    [2, true, 'not', 'the condition below does not hold'],
    [3, false, 'StudyDescription matches wildcard *HEAD*', "was 'CHEST ROUTINE'"],
    [1, true, 'not', 'the condition below does not hold'],
    [2, false, 'any of 2', 'none holds'],
    [3, false, 'PatientID = X', "was '000123'"],
    [3, false, 'Modality = MR', "was 'CT'"],
  ]);
  t.false(holds('any:\n  - { attribute: Modality, equals: MR }\n  - { attribute: Modality, equals: PT }'));
  t.false(holds('all:\n  - { attribute: Modality, equals: CT }\n  - { attribute: Modality, equals: PT }'));
  // a top-level list is all of them, traced without a group line
  const list = check('- { attribute: Modality, equals: CT }\n- { callingAe: X }');
  t.false(list.ok);
  t.deepEqual(list.lines.map((l) => [l.depth, l.ok]), [[0, true], [0, false]]);
});

test('trace texts for every operator', (t) => {
  const texts = (when: string) => check(when).lines.map((l) => `${l.ok ? '✔' : '✘'} ${l.text} (${l.why})`);
  t.deepEqual(texts(`- { attribute: Modality, equals: CT }
- { attribute: Modality, in: [MR, PT] }
- { attribute: StudyDescription, wildcard: 'CHEST*' }
- { attribute: PatientID, regex: '^0+' }
- { attribute: StudyDate, range: { from: 20240101, to: 20241231 } }
- { attribute: StudyDate, range: { from: 20240101 } }
- { attribute: SeriesNumber, range: { to: 2 } }
- { attribute: PatientComments, exists: true }
- { attribute: PatientComments, exists: false }
- { attribute: ImageType, equals: AXIAL }
- { attribute: SeriesNumber, equals: 3 }
- { sourceAddress: [10.0.0.0/8, "fd00::/8"] }
- { attribute: StudyDescription, equals: CHEST ROUTINE }`), [
    "✔ Modality = CT (was 'CT')",
    "✘ Modality in [MR, PT] (was 'CT')",
    "✔ StudyDescription matches wildcard CHEST* (was 'CHEST ROUTINE')",
    "✔ PatientID matches /^0+/ (was '000123')",
    "✔ StudyDate in range 20240101..20241231 (was '20240115')",
    "✔ StudyDate >= 20240101 (was '20240115')",
    '✘ SeriesNumber <= 2 (was 3)',
    '✘ PatientComments exists (absent)',
    '✔ PatientComments is missing (absent)',
    "✔ ImageType = AXIAL (was 'ORIGINAL\\PRIMARY\\AXIAL')",
    '✔ SeriesNumber = 3 (was 3)',
    '✔ sourceAddress in 10.0.0.0/8, fd00::/8 (was 10.1.2.3)',
    "✔ StudyDescription = 'CHEST ROUTINE' (was 'CHEST ROUTINE')",
  ]);
});

test('no conditions match everything', (t) => {
  const [rule] = parseRuleFile('rules:\n  - name: t\n    then: {}\n', 't.yaml', { peers: [] });
  const r = evaluateWhen(rule.when, { association: ASSOCIATION, dataset: {} });
  t.true(r.ok);
  t.deepEqual(r.lines, [{ text: '(no conditions)', ok: true, why: 'matches everything', depth: 0 }]);
});

test('property: a date range holds exactly when from <= value <= to; a number range likewise', (t) => {
  const date = fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10).replace(/-/g, ''));
  fc.assert(fc.property(date, date, date, (v, a, b) => {
    const [from, to] = a <= b ? [a, b] : [b, a];
    return holds(`attribute: StudyDate\nrange: { from: '${from}', to: '${to}' }`, { StudyDate: v }) === (from <= v && v <= to);
  }), { numRuns: 200 });
  fc.assert(fc.property(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 }), (v, a, b) => {
    const [from, to] = a <= b ? [a, b] : [b, a];
    return holds(`attribute: SeriesNumber\nrange: { from: ${from}, to: ${to} }`, { SeriesNumber: String(v) }) === (from <= v && v <= to);
  }), { numRuns: 200 });
  t.pass();
});

test('property: a time range at full precision agrees with comparing seconds', (t) => {
  const time = fc.integer({ min: 0, max: 86399 }).map((s) => [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(''));
  fc.assert(fc.property(time, time, time, (v, a, b) => {
    const [from, to] = a <= b ? [a, b] : [b, a];
    return holds(`attribute: StudyTime\nrange: { from: '${from}', to: '${to}' }`, { StudyTime: `${v}.123` }) === (from <= v && v <= to);
  }), { numRuns: 200 });
  t.pass();
});
