import test from 'ava';
import fc from 'fast-check';
import { entityMatcher, matchingType, matchValue, MatchMerger, queryLevelOf, textOf, uniqueKeyOf } from '../../protocol/qr-matching.ts';

test('matching types of PS3.4 C.2.2.2 by VR and value', (t) => {
  t.is(matchingType('PN', ''), 'universal');
  t.is(matchingType('PN', '*'), 'universal');
  t.is(matchingType('LO', 'ABC'), 'single');
  t.is(matchingType('PN', 'DOE*'), 'wildcard');
  t.is(matchingType('DA', '20230101-20231231'), 'range');
  t.is(matchingType('UI', '1.2.3\\1.2.4'), 'uid-list');
  // Wildcards do not apply to dates or UIDs: a '*' there is a literal single value.
  t.is(matchingType('UI', '1.2.*'), 'single');
  t.is(matchingType('DA', '2023*'), 'single');
});

test('single value: exact, case-sensitive, padding ignored; absent values match only universal', (t) => {
  t.true(matchValue('LO', 'PAT1', 'PAT1 '));
  t.false(matchValue('LO', 'PAT1', 'pat1'));
  t.false(matchValue('LO', 'PAT1', undefined));
  t.true(matchValue('LO', '', undefined));
  t.true(matchValue('DA', '2023.01.02', '20230102'));
});

test('wildcards: * any run, ? one character, anything else literal', (t) => {
  t.true(matchValue('PN', 'DOE^*', 'DOE^JOHN'));
  t.true(matchValue('PN', 'D?E^J*N', 'DOE^JOHN'));
  t.false(matchValue('PN', 'DOE^?', 'DOE^JOHN'));
  t.false(matchValue('LO', 'A.B*', 'AXB1'));
  t.true(matchValue('PN', '山田*', '山田^太郎=やまだ^たろう'));
});

test('ranges: closed, open below, open above; time ranges at the precision given', (t) => {
  t.true(matchValue('DA', '20230101-20231231', '20230615'));
  t.false(matchValue('DA', '20230101-20231231', '20240101'));
  t.true(matchValue('DA', '-20230101', '20221231'));
  t.true(matchValue('DA', '20230101-', '20990101'));
  t.false(matchValue('DA', '20230101-', '20221231'));
  t.true(matchValue('TM', '10-11', '115959.123'));
  t.false(matchValue('TM', '10-11', '120000'));
});

test('UID lists and multi-valued attributes match when any value does', (t) => {
  t.true(matchValue('UI', '1.2.3\\1.2.4', '1.2.4'));
  t.false(matchValue('UI', '1.2.3\\1.2.4', '1.2.5'));
  t.true(matchValue('CS', 'MR', 'CT\\MR'));
});

test('an entity matches when every supported key does; unsupported non-universal keys are reported, not matched', (t) => {
  const supported = new Set(['PatientID', 'StudyDate']);
  const entity = { PatientID: 'P1', StudyDate: '20230101' };
  const verdict = (keys: Record<string, string>) => {
    const m = entityMatcher(keys, supported);
    return { matches: m.matches(entity), unsupported: m.unsupported };
  };
  t.deepEqual(verdict({ PatientID: 'P1', StudyDate: '2023-', PatientBirthDate: '' }), { matches: true, unsupported: [] });
  t.deepEqual(verdict({ PatientID: 'P2' }), { matches: false, unsupported: [] });
  t.deepEqual(verdict({ PatientID: 'P1', PatientSex: 'F', QueryRetrieveLevel: 'STUDY' }), { matches: true, unsupported: ['PatientSex'] });
});

test('one matcher answers for many entities, each on its own values', (t) => {
  const m = entityMatcher({ PatientName: 'DOE^*', StudyDate: '20230101-20231231', Modality: '' }, new Set(['PatientName', 'StudyDate', 'Modality']));
  const entities = [
    { PatientName: 'DOE^JOHN', StudyDate: '20230615' },
    { PatientName: 'DOE^JANE', StudyDate: '20240101' },
    { PatientName: 'ROE^JOHN', StudyDate: '20230615' },
    { PatientName: 'DOE^JIM', StudyDate: '20231231', Modality: 'CT' },
    { StudyDate: '20230615' },
  ];
  t.deepEqual(entities.map((e) => m.matches(e)), [true, false, false, true, false]);
  t.deepEqual(m.unsupported, []);
});

test('universal matching matches every value (property)', (t) => {
  fc.assert(fc.property(fc.constantFrom('PN', 'LO', 'DA', 'UI', 'CS'), fc.option(fc.string(), { nil: undefined }), (vr, v) => matchValue(vr, '', v)));
  t.pass();
});

test('a value matches itself as a single value, and as a * wildcard with its first character (property)', (t) => {
  const text = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\\*?\-]/.test(s) && s.trim() === s && s !== '');
  fc.assert(fc.property(text, (v) => matchValue('LO', v, v) && matchValue('LO', `${v[0]}*`, v)));
  t.pass();
});

test('unique keys and merging: first of each key kept, issuer qualifies the patient', (t) => {
  t.is(uniqueKeyOf('STUDY', { StudyInstanceUID: '1.2' }), '1.2');
  t.is(uniqueKeyOf('STUDY', {}), undefined);
  t.not(uniqueKeyOf('PATIENT', { PatientID: 'P', IssuerOfPatientID: 'A' }), uniqueKeyOf('PATIENT', { PatientID: 'P', IssuerOfPatientID: 'B' }));
  const m = new MatchMerger('SERIES');
  t.true(m.admit({ SeriesInstanceUID: '1' }));
  t.true(m.admit({ SeriesInstanceUID: '2' }));
  t.false(m.admit({ SeriesInstanceUID: '1' }));
  t.true(m.admit({}));
  t.is(m.duplicates, 1);
});

test('merging any interleaving of sources yields each unique key once (property)', (t) => {
  fc.assert(fc.property(fc.array(fc.array(fc.constantFrom('1.1', '1.2', '1.3', '1.4'))), (sources) => {
    const m = new MatchMerger('STUDY');
    const out = sources.flat().filter((uid) => m.admit({ StudyInstanceUID: uid }));
    return out.length === new Set(sources.flat()).size && new Set(out).size === out.length;
  }));
  t.pass();
});

test('text of naturalized values and query levels', (t) => {
  t.is(textOf([{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎' }]), 'Yamada^Tarou=山田^太郎');
  t.is(textOf(['CT', 'MR']), 'CT\\MR');
  t.is(textOf(3), '3');
  t.is(queryLevelOf('study '), 'STUDY');
  t.is(queryLevelOf('FRAME'), undefined);
});
