// Prior selection and the C-FIND keys of a prefetch rule; the decision carries the prefetch;
// placeholders resolved from the triggering instance; the archive's instance count for the destination check.
import test from 'ava';
import fc from 'fast-check';
import { evaluate, explainText } from '../../routing/evaluate.ts';
import { candidateOf, priorQueryKeys, renderSelectionTemplate, resolveSelection, selectPriors } from '../../routing/prefetch-select.ts';
import type { PriorCandidate } from '../../routing/prefetch-select.ts';
import { parseRuleFiles } from '../../routing/rules-loader.ts';
import type { PrefetchAction } from '../../routing/rule.types.ts';

const action = (over: Partial<PrefetchAction> = {}): PrefetchAction => ({ archive: 'A', destination: 'WS', queryModel: 'study-root', excludeTriggeringStudy: true, max: 3, dedupHours: 24, ...over });
const trigger = { patientId: 'P1', studyInstanceUid: 'T', at: new Date('2025-06-01T12:00:00Z') };
const c = (uid: string, date?: string, modalities = ['CT'], extra: Partial<PriorCandidate> = {}): PriorCandidate => ({ studyInstanceUid: uid, modalities, ...(date ? { studyDate: date } : {}), ...extra });

test('C-FIND keys: patient (and issuer), date range from the window, return keys', (t) => {
  t.deepEqual(priorQueryKeys(action({ withinDays: 365 }), { ...trigger, issuerOfPatientId: 'HOSP' }), {
    PatientID: 'P1', IssuerOfPatientID: 'HOSP', StudyInstanceUID: '', StudyDate: '20240601-', StudyTime: '', AccessionNumber: '', ModalitiesInStudy: '', StudyDescription: '',
  });
  t.is(priorQueryKeys(action(), trigger).StudyDate, '');
  t.is(priorQueryKeys(action({ bodyPart: 'HEAD' }), trigger).BodyPartExamined, '');
});

test('candidates from matches: multi-valued ModalitiesInStudy, trimmed text, no UID no candidate', (t) => {
  t.deepEqual(candidateOf({ StudyInstanceUID: '1.2 ', ModalitiesInStudy: ['CT', 'SR'], StudyDate: '20240101', StudyDescription: ' X ' }), { studyInstanceUid: '1.2', modalities: ['CT', 'SR'], studyDate: '20240101', description: 'X' });
  t.deepEqual(candidateOf({ StudyInstanceUID: '1.3', ModalitiesInStudy: 'MR\\PR' })!.modalities, ['MR', 'PR']);
  t.is(candidateOf({ PatientID: 'x' }), undefined);
});

test('selection: each filter with its reason; newest first; max', (t) => {
  const { selected, left } = selectPriors([
    c('T', '20250601'), c('us', '20250101', ['US']), c('old', '20190101'), c('nodate'), c('a', '20240101', ['CT'], { description: 'CT HEAD' }),
    c('b', '20250101', ['MR', 'CT'], { description: 'CT HEAD', studyTime: '1000' }), c('b2', '20250101', ['CT'], { description: 'CT HEAD', studyTime: '0900' }),
    c('chest', '20250201', ['CT'], { description: 'CT CHEST' }), c('a', '20240101'),
  ], action({ modalities: ['CT'], withinDays: 5 * 365, description: 'HEAD', max: 2 }), trigger);
  t.deepEqual(selected.map((s) => s.studyInstanceUid), ['b', 'b2']);
  const why = Object.fromEntries(left.map((l) => [l.studyInstanceUid, l.why]));
  t.is(why.T, 'the triggering study');
  t.regex(why.us, /modalities US not in CT/);
  t.regex(why.old, /study date 20190101 before 2020/);
  t.regex(why.nodate, /study date \(none\)/);
  t.regex(why.chest, /does not match \/HEAD\//);
  t.deepEqual(left.filter((l) => l.studyInstanceUid === 'a').map((l) => l.why), ['listed twice by the archive', 'beyond the newest 2']);
  t.deepEqual(selectPriors([c('T', '20250601')], action({ excludeTriggeringStudy: false }), trigger).selected.map((s) => s.studyInstanceUid), ['T']);
  t.regex(selectPriors([c('x', '20250101', ['CT'], { bodyPart: 'CHEST' })], action({ bodyPart: '^HEAD$' }), trigger).left[0].why, /body part "CHEST"/);
});

test('property: the selection is at most max, sorted newest first, and each candidate is selected or left exactly once', (t) => {
  const cand = fc.record({ studyInstanceUid: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'T'), studyDate: fc.option(fc.integer({ min: 20100101, max: 20251231 }).map(String), { nil: undefined }), modalities: fc.subarray(['CT', 'MR', 'US']) });
  fc.assert(fc.property(fc.array(cand, { maxLength: 12 }), fc.integer({ min: 1, max: 4 }), (cands, max) => {
    const clean = cands.map((x) => (x.studyDate === undefined ? { studyInstanceUid: x.studyInstanceUid, modalities: x.modalities } : x)) as PriorCandidate[];
    const { selected, left } = selectPriors(clean, action({ max, modalities: ['CT', 'MR'] }), trigger);
    if (selected.length > max) return false;
    for (let i = 1; i < selected.length; i++) if ((selected[i - 1].studyDate ?? '') < (selected[i].studyDate ?? '')) return false;
    return selected.length + left.length === clean.length && !selected.some((s) => s.studyInstanceUid === 'T');
  }));
  t.pass();
});

test('evaluate: matched rules carry their prefetch (a drop does not cancel it); explain says so', (t) => {
  const set = parseRuleFiles([{ file: 'r.yaml', text: `rules:
  - name: p
    continue: true
    when: [{ attribute: Modality, equals: CT }]
    then: { prefetch: { archive: ARCHIVE, destination: WS, modalities: [CT], within: 2y } }
  - name: d
    then: { drop: true }
` }], { peers: ['ARCHIVE'] });
  const input = (modality: string) => ({ association: { callingAeTitle: 'CT1', calledAeTitle: 'R', listener: 'main', remoteAddress: '127.0.0.1' }, dataset: { Modality: modality } });
  const decision = evaluate(set, input('CT'));
  t.true(decision.drop);
  t.like(decision.prefetch![0], { rule: 'p', archive: 'ARCHIVE', destination: 'WS', withinDays: 730 });
  t.regex(explainText(decision), /prefetch \(if this study is new\): priors of the patient from ARCHIVE to WS \(modalities CT, within 730 days, not this study, newest 3\), rule 'p'/);
  t.false('prefetch' in evaluate(set, input('MR')));
});

test('destination check: NumberOfStudyRelatedInstances asked of the archive only when the rule checks; read as a number', (t) => {
  t.is(priorQueryKeys(action({ skipIfDestinationHas: 'WSQR' }), trigger).NumberOfStudyRelatedInstances, '');
  t.false('NumberOfStudyRelatedInstances' in priorQueryKeys(action(), trigger));
  t.is(candidateOf({ StudyInstanceUID: '1', NumberOfStudyRelatedInstances: 12 })!.instances, 12);
  t.is(candidateOf({ StudyInstanceUID: '1', NumberOfStudyRelatedInstances: ' 7 ' })!.instances, 7);
  t.false('instances' in candidateOf({ StudyInstanceUID: '1', NumberOfStudyRelatedInstances: '' })!);
  t.false('instances' in candidateOf({ StudyInstanceUID: '1', NumberOfStudyRelatedInstances: 'x' })!);
});

const triggering = { Modality: 'CT', BodyPartExamined: 'CHEST (PA) ', StudyDescription: 'CT.THORAX+', ModalitiesInStudy: ['CT', 'SR'] };

test('placeholders: same modality, same body part (regex-escaped), several values give several modalities', (t) => {
  const r = resolveSelection(action({ modalities: ['{{Modality}}', 'MR'], bodyPart: '^{{BodyPartExamined}}$', description: '{{StudyDescription}}' }), triggering);
  t.deepEqual(r.action.modalities, ['CT', 'MR']);
  t.is(r.action.bodyPart, '^CHEST \\(PA\\)$');
  t.true(new RegExp(r.action.bodyPart!).test('CHEST (PA)'));
  t.false(new RegExp(r.action.description!).test('CTXTHORAXX'), 'the dot and plus are literal');
  t.deepEqual(r.templates, { modalities: ['{{Modality}}', 'MR'], bodyPart: '^{{BodyPartExamined}}$', description: '{{StudyDescription}}' });
  t.deepEqual(resolveSelection(action({ modalities: ['{{ModalitiesInStudy}}'] }), triggering).action.modalities, ['CT', 'SR']);
  t.is(renderSelectionTemplate('{{(0008,0060)}}', triggering, false), 'CT');
  // Selection with the resolved action: only the trigger's modality.
  const { selected } = selectPriors([c('ct', '20250101'), c('mr', '20250102', ['MR']), c('us', '20250103', ['US'])], resolveSelection(action({ modalities: ['{{Modality}}'] }), triggering).action, trigger);
  t.deepEqual(selected.map((x) => x.studyInstanceUid), ['ct']);
});

test('placeholders without a value in the trigger: that criterion is dropped (more priors, never none), and said', (t) => {
  const r = resolveSelection(action({ modalities: ['{{Modality}}'], bodyPart: '^{{BodyPartExamined}}$', description: 'HEAD' }), { Modality: '', StudyDescription: 'X' });
  t.false('modalities' in r.action);
  t.false('bodyPart' in r.action);
  t.is(r.action.description, 'HEAD', 'criteria without placeholders stay');
  t.deepEqual(r.notes, [
    'modalities entry {{Modality}} left out: no value in the triggering instance',
    'modalities criterion ignored: {{Modality}} has no value in the triggering instance',
    'bodyPart criterion ignored: ^{{BodyPartExamined}}$ has no value in the triggering instance',
  ]);
  t.deepEqual(resolveSelection(action({ modalities: ['{{BodyPartExamined}}', 'CT'] }), {}).action.modalities, ['CT'], 'other entries remain');
  const plain = resolveSelection(action({ modalities: ['CT'], bodyPart: 'HEAD' }), triggering);
  t.deepEqual(plain, { action: action({ modalities: ['CT'], bodyPart: 'HEAD' }), notes: [] }, 'nothing to resolve: unchanged, no templates');
});
