import test from 'ava';
import type { NaturalizedDataset } from 'dcmjs';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { applyModifications, modificationText } from '../../routing/modifications.ts';
import { parseRuleFile } from '../../routing/rules-loader.ts';
import type { Modification } from '../../routing/rule.types.ts';
import { datasetOf, makeInstance, SOP, TS } from '../helpers/dicom-files.ts';

const PEERS = { peers: ['PACS'] };

/** The modifications of a one-rule file whose modify list is `list` (YAML lines). */
function mods(list: string): Modification[] {
  const text = `rules:\n  - name: m\n    then:\n      forward: [PACS]\n      modify:\n${list.replace(/^/gm, '        ')}\n`;
  return parseRuleFile(text, 'm.yaml', PEERS)[0].then.modify;
}

const base = (): NaturalizedDataset => ({
  _vrMap: {},
  ImageType: ['ORIGINAL', 'PRIMARY'],
  AccessionNumber: 'ACC0001',
  Modality: 'CT',
  InstitutionName: 'Old Hospital',
  PatientName: [{ Alphabetic: 'DOE^JOHN' }],
  PatientID: '000123',
  PatientComments: 'remove me',
  StudyID: 'S1',
  SeriesNumber: 3,
  '00090010': 'ROUTER TEST',
  '00091001': 'private text',
});

test('set a fixed value: naturalized like dcmjs, and one net change for the rewriter', (t) => {
  const input = base();
  const frozen = structuredClone(input);
  const r = applyModifications(input, mods("- set: { attribute: InstitutionName, value: 'General Hospital' }\n- set: { attribute: SeriesNumber, value: '7' }\n- set: { attribute: PatientName, value: 'ANON^PATIENT' }\n- set: { attribute: ImageType, value: [DERIVED, SECONDARY] }\n- set: { attribute: BodyPartExamined, value: CHEST }"));
  t.is(r.dataset.InstitutionName, 'General Hospital');
  t.is(r.dataset.SeriesNumber, 7);
  t.deepEqual(r.dataset.PatientName, [{ Alphabetic: 'ANON^PATIENT' }]);
  t.deepEqual(r.dataset.ImageType, ['DERIVED', 'SECONDARY']);
  t.is(r.dataset.BodyPartExamined, 'CHEST', 'a standard attribute that was absent is added');
  t.deepEqual(r.changes, [
    { keyword: 'InstitutionName', tag: '00080080', action: 'set', value: 'General Hospital' },
    { keyword: 'SeriesNumber', tag: '00200011', action: 'set', value: 7 },
    { keyword: 'PatientName', tag: '00100010', action: 'set', value: 'ANON^PATIENT' },
    { keyword: 'ImageType', tag: '00080008', action: 'set', value: ['DERIVED', 'SECONDARY'] },
    { keyword: 'BodyPartExamined', tag: '00180015', action: 'set', value: 'CHEST' },
  ]);
  t.deepEqual(r.notes, []);
  t.deepEqual(input, frozen, 'the input dataset is not changed');
  t.not(r.dataset, input);
});

test('remove: standard and private by creator; absent ones change nothing', (t) => {
  const r = applyModifications(base(), mods("- remove: { attribute: PatientComments }\n- remove: { tag: '(0009,xx01)', creator: ROUTER TEST }\n- remove: { attribute: OtherPatientIDs }"));
  t.false('PatientComments' in r.dataset);
  t.false('00091001' in r.dataset);
  t.is(r.dataset['00090010'], 'ROUTER TEST', 'the creator stays');
  t.deepEqual(r.changes, [
    { keyword: 'PatientComments', tag: '00104000', action: 'remove' },
    { tag: '00091001', action: 'remove' },
  ]);
});

test('copy: values (converted to the target VR); an absent source leaves the target alone', (t) => {
  const r = applyModifications(base(), mods('- copy: { from: AccessionNumber, to: StudyID }\n- copy: { from: PatientName, to: OtherPatientNames }\n- copy: { from: SeriesNumber, to: StudyDescription }\n- copy: { from: PatientComments, to: SeriesNumber }\n- copy: { from: AdmittingDiagnosesDescription, to: InstitutionName }'));
  t.is(r.dataset.StudyID, 'ACC0001');
  t.deepEqual(r.dataset.OtherPatientNames, [{ Alphabetic: 'DOE^JOHN' }]);
  t.is(r.dataset.StudyDescription, 3);
  t.is(r.dataset.SeriesNumber, 3, 'a text that is not a number is not copied into IS');
  t.is(r.dataset.InstitutionName, 'Old Hospital');
  t.deepEqual(r.changes.map((c) => [c.keyword, c.action, c.value]), [['StudyID', 'set', 'ACC0001'], ['OtherPatientNames', 'set', 'DOE^JOHN'], ['StudyDescription', 'set', 3]]);
  t.deepEqual(r.notes, [
    "copy PatientComments to SeriesNumber: skipped, 'remove me' is not a number (VR IS)",
    'copy AdmittingDiagnosesDescription to InstitutionName: skipped, AdmittingDiagnosesDescription is absent',
  ]);
});

test('replace: every match in every value, $ references, PN as a whole', (t) => {
  const r = applyModifications(base(), mods("- replace: { attribute: PatientID, regex: '^0+', with: '' }\n- replace: { attribute: ImageType, regex: 'I', with: 'i' }\n- replace: { attribute: PatientName, regex: '^(\\w+)\\^(\\w+)$', with: '$2 $1' }\n- replace: { attribute: PatientComments, regex: 'me', with: 'ME' }\n- replace: { attribute: StudyDescription, regex: 'x', with: 'y' }"));
  t.is(r.dataset.PatientID, '123');
  t.deepEqual(r.dataset.ImageType, ['ORiGiNAL', 'PRiMARY']);
  t.deepEqual(r.dataset.PatientName, [{ Alphabetic: 'JOHN DOE' }]);
  t.is(r.dataset.PatientComments, 'remove ME');
  t.false('StudyDescription' in r.dataset, 'replace on an absent attribute does nothing');
  t.is(r.changes.length, 4);
});

test('templates read the current dataset: earlier modifications, keywords and tags, absent as empty, \\ splits values', (t) => {
  const r = applyModifications(base(), mods([
    "- set: { attribute: PatientID, value: 'NEW' }",
    "- set: { attribute: OtherPatientIDs, template: '{{PatientID}}^{{AccessionNumber}}' }",
    "- set: { attribute: StudyDescription, template: '{{ (0008,0060) }} {{PatientComments}}{{StudyComments}}.' }",
    "- set: { attribute: ImageType, template: '{{ImageType}}\\LOCALIZER' }",
    "- set: { attribute: PatientName, template: 'ANON^{{SeriesNumber}}' }",
    "- set: { attribute: AccessionNumber, template: '{{(0009,1001)}}' }",
  ].join('\n')));
  t.is(r.dataset.OtherPatientIDs, 'NEW^ACC0001');
  t.is(r.dataset.StudyDescription, 'CT remove me.');
  t.deepEqual(r.dataset.ImageType, ['ORIGINAL', 'PRIMARY', 'LOCALIZER']);
  t.deepEqual(r.dataset.PatientName, [{ Alphabetic: 'ANON^3' }]);
  t.is(r.dataset.AccessionNumber, 'private text');
});

test('changes are the net effect: set then remove, set to the same value, remove then set', (t) => {
  const r = applyModifications(base(), mods([
    '- set: { attribute: InstitutionName, value: X }',
    '- remove: { attribute: InstitutionName }',
    '- set: { attribute: Modality, value: CT }',
    '- remove: { attribute: StudyID }',
    '- set: { attribute: StudyID, value: S1 }',
    '- set: { attribute: AccessionNumber, value: A }',
    '- set: { attribute: AccessionNumber, value: B }',
    '- set: { attribute: StationName, value: X }',
    '- remove: { attribute: StationName }',
  ].join('\n')));
  t.deepEqual(r.changes, [
    { keyword: 'InstitutionName', tag: '00080080', action: 'remove' },
    { keyword: 'AccessionNumber', tag: '00080050', action: 'set', value: 'B' },
  ]);
});

test('private elements: changed where they exist, never created', (t) => {
  const r = applyModifications(base(), mods([
    "- set: { tag: '(0009,xx01)', creator: ROUTER TEST, value: changed }",
    "- set: { tag: '(0009,xx05)', creator: ROUTER TEST, value: new }",
    "- set: { tag: '(0011,xx01)', creator: NOBODY, value: new }",
    "- replace: { tag: '(0009,1001)', regex: 'changed', with: 'CHANGED' }",
    "- set: { tag: '(0019,1001)', value: new }",
  ].join('\n')));
  t.is(r.dataset['00091001'], 'CHANGED');
  t.deepEqual(r.changes, [{ tag: '00091001', action: 'set', value: 'CHANGED' }]);
  t.deepEqual(r.notes, [
    "set (0009,xx05) [ROUTER TEST] = 'new': skipped, (0009,xx05) [ROUTER TEST] is absent and rules do not create private or unknown elements",
    "set (0011,xx01) [NOBODY] = 'new': skipped, no private block of creator 'NOBODY' in group 0011",
    "set (0019,1001) = 'new': skipped, (0019,1001) is absent and rules do not create private or unknown elements",
  ]);
});

test('real instances: private raw bytes (Implicit VR) are read and replaced as text', (t) => {
  for (const ts of [TS.implicitLE, TS.explicitLE]) {
    const dataset = parseHeader(datasetOf(makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: ts, withPrivateTags: true, pixelBytes: 0 })), ts).dataset as NaturalizedDataset;
    const r = applyModifications(dataset, mods([
      "- replace: { tag: '(0009,xx01)', creator: ROUTER TEST, regex: 'private', with: 'public' }",
      "- set: { attribute: PatientName, template: '{{PatientID}}^{{(0009,1002)}}' }",
      "- remove: { tag: '(7053,xx00)', creator: Philips PET Private Group }",
    ].join('\n')));
    t.deepEqual(r.changes, [
      { tag: '00091001', action: 'set', value: 'public text' },
      { keyword: 'PatientName', tag: '00100010', action: 'set', value: 'PID0001^42.5' },
      { tag: '70531000', action: 'remove' },
    ], ts);
  }
});

test('modifications in words', (t) => {
  t.deepEqual(mods([
    "- set: { attribute: InstitutionName, value: 'General Hospital' }",
    '- set: { attribute: SeriesNumber, value: 5 }',
    '- set: { attribute: ImageType, value: [DERIVED, SECONDARY] }',
    "- set: { attribute: PatientName, template: '{{PatientID}}^X' }",
    '- remove: { attribute: PatientComments }',
    "- remove: { tag: '(0009,xx01)', creator: ROUTER TEST }",
    "- remove: { tag: '(0019,1001)' }",
    '- copy: { from: AccessionNumber, to: StudyID }',
    "- replace: { attribute: PatientID, regex: '^0+', with: '' }",
  ].join('\n')).map(modificationText), [
    "set InstitutionName = 'General Hospital'",
    'set SeriesNumber = 5',
    'set ImageType = [DERIVED, SECONDARY]',
    "set PatientName = template '{{PatientID}}^X'",
    'remove PatientComments',
    'remove (0009,xx01) [ROUTER TEST]',
    'remove (0019,1001)',
    'copy AccessionNumber to StudyID',
    "replace /^0+/ in PatientID with ''",
  ]);
});
