import test from 'ava';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { evaluate, explainText } from '../../routing/evaluate.ts';
import { loadRuleFiles, parseRuleFiles } from '../../routing/rules-loader.ts';
import type { Association, RoutingInput, RuleSet } from '../../routing/rule.types.ts';
import { datasetOf, makeInstance, SOP, TS } from '../helpers/dicom-files.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PEERS = { peers: ['PACS', 'PACS_BACKUP', 'ARCHIVE', 'AI', 'WS'] };
const ASSOCIATION: Association = { callingAeTitle: 'CT1', calledAeTitle: 'ROUTER', listener: 'main', remoteAddress: '127.0.0.1' };
const CT: RoutingInput = { association: ASSOCIATION, dataset: { Modality: 'CT', PatientID: 'P1', StudyDescription: 'CHEST' } };
const MR: RoutingInput = { association: ASSOCIATION, dataset: { Modality: 'MR', PatientID: 'P2' } };

function rules(...files: string[]): RuleSet {
  return parseRuleFiles(files.map((text, i) => ({ file: `${String.fromCharCode(97 + i)}.yaml`, text })), PEERS, new Date(0));
}

test('rules run by priority; a match without continue stops evaluation', (t) => {
  const set = rules(`rules:
  - name: catch-all
    then: { forward: [ARCHIVE] }
  - name: ct
    priority: 10
    when: { attribute: Modality, equals: CT }
    then: { forward: [PACS] }
`);
  const ct = evaluate(set, CT);
  t.deepEqual(ct.matchedRules, ['ct']);
  t.deepEqual(ct.forward, [{ peer: 'PACS', modifications: [], rule: 'ct' }]);
  t.deepEqual(ct.trace.map((r) => [r.rule, r.matched, r.skipped]), [['ct', true, undefined], ['catch-all', false, "'ct' matched and does not continue"]]);
  const mr = evaluate(set, MR);
  t.deepEqual(mr.matchedRules, ['catch-all']);
  t.deepEqual(mr.forward.map((f) => f.peer), ['ARCHIVE']);
  t.false(mr.drop);
  t.is(mr.reject, undefined);
});

test('continue: later rules add their forwards, de-duplicated by peer (first rule wins), in rule order', (t) => {
  const set = rules(`rules:
  - name: ct
    priority: 10
    continue: true
    when: { attribute: Modality, equals: CT }
    then:
      forward: [{ peer: PACS, failover: PACS_BACKUP }, AI]
      modify: [{ set: { attribute: InstitutionName, value: General } }]
  - name: everything
    continue: true
    then: { forward: [ARCHIVE, PACS] }
  - name: last
    priority: 200
    then: { forward: [WS] }
`);
  const d = evaluate(set, CT);
  t.deepEqual(d.matchedRules, ['ct', 'everything', 'last']);
  const setInstitution = { op: 'set', target: { kind: 'tag', tag: '00080080', keyword: 'InstitutionName', vr: 'LO' }, value: 'General' };
  t.deepEqual(d.forward, [
    { peer: 'PACS', failover: 'PACS_BACKUP', modifications: [setInstitution], rule: 'ct' },
    { peer: 'AI', modifications: [setInstitution], rule: 'ct' },
    { peer: 'ARCHIVE', modifications: [], rule: 'everything' },
    { peer: 'WS', modifications: [], rule: 'last' },
  ]);
  t.deepEqual(d.modifications, [setInstitution]);
  t.deepEqual(d.notes, ["rule 'everything': forward to PACS ignored, rule 'ct' already forwards there"]);
});

test('ties in priority: file name, then position in the file', (t) => {
  const set = rules(
    'rules:\n  - { name: a1, continue: true, then: { forward: [PACS] } }\n  - { name: a2, continue: true, then: {} }\n',
    'rules:\n  - { name: b1, priority: 100, continue: true, then: { forward: [ARCHIVE] } }\n  - { name: b0, priority: 99, continue: true, then: {} }\n',
  );
  const d = evaluate(set, CT);
  t.deepEqual(d.matchedRules, ['b0', 'a1', 'a2', 'b1']);
  t.deepEqual(d.forward.map((f) => `${f.peer}<-${f.rule}`), ['PACS<-a1', 'ARCHIVE<-b1']);
});

test('drop wins over every forward, from earlier or later rules', (t) => {
  const set = rules(`rules:
  - name: to-pacs
    priority: 1
    continue: true
    then: { forward: [PACS] }
  - name: drop-ct
    priority: 2
    continue: true
    when: { attribute: Modality, equals: CT }
    then: { drop: true }
  - name: to-archive
    priority: 3
    then: { forward: [ARCHIVE] }
`);
  const d = evaluate(set, CT);
  t.true(d.drop);
  t.deepEqual(d.forward, []);
  t.deepEqual(d.matchedRules, ['to-pacs', 'drop-ct', 'to-archive']);
  t.deepEqual(d.notes, [
    "rule 'drop-ct' drops the instance: it is kept and recorded but forwarded nowhere",
    "drop wins over forward: forward to PACS (rule 'to-pacs'), ARCHIVE (rule 'to-archive') not used",
  ]);
  const mr = evaluate(set, MR);
  t.false(mr.drop);
  t.deepEqual(mr.forward.map((f) => f.peer), ['PACS', 'ARCHIVE']);
});

test('the first matching reject wins and stops evaluation; nothing is forwarded', (t) => {
  const set = rules(`rules:
  - name: to-pacs
    priority: 1
    continue: true
    then: { forward: [PACS] }
  - name: reject-ct
    priority: 2
    continue: true
    when: { attribute: Modality, equals: CT }
    then: { reject: { status: 0xA700, comment: No CT today } }
  - name: reject-all
    priority: 3
    then: { reject: { status: 'C001' } }
`);
  const d = evaluate(set, CT);
  t.deepEqual(d.reject, { status: 0xa700, comment: 'No CT today' });
  t.deepEqual(d.forward, []);
  t.deepEqual(d.matchedRules, ['to-pacs', 'reject-ct']);
  t.is(d.trace[2].skipped, "'reject-ct' rejected the instance");
  const mr = evaluate(set, MR);
  t.deepEqual(mr.reject, { status: 0xc001, comment: "rejected by routing rule 'reject-all'" });
});

test('no rule matches: nothing forwarded, nothing dropped; an empty rule set likewise', (t) => {
  const set = rules('rules:\n  - { name: ct, when: { attribute: Modality, equals: CT }, then: { forward: [PACS] } }\n');
  const d = evaluate(set, MR);
  t.deepEqual([d.forward, d.drop, d.reject, d.matchedRules], [[], false, undefined, []]);
  const empty = evaluate({ rules: [], files: [], loadedAt: '' }, MR);
  t.deepEqual(empty.trace, []);
  t.is(explainText(empty), 'Rules, in evaluation order:\n  (no rules are loaded)\nDecision:\n  no rule matched: the instance is kept and recorded, and forwarded nowhere');
});

test('explain: one line per rule and condition, then the decision', (t) => {
  const set = rules(`rules:
  - name: ct-to-pacs
    priority: 10
    continue: true
    when:
      - attribute: Modality
        equals: CT
      - any:
          - callingAe: CT*
          - sourceAddress: 10.0.0.0/8
    then:
      forward: [{ peer: PACS, failover: PACS_BACKUP }]
      modify:
        - set: { attribute: InstitutionName, value: General Hospital }
        - replace: { attribute: PatientID, regex: '^P', with: 'X' }
  - name: mr-to-ai
    priority: 20
    continue: true
    when: { attribute: Modality, in: [MR, PT] }
    then: { forward: [AI] }
  - name: archive
    then: { forward: [ARCHIVE] }
  - name: never
    priority: 500
    then: { drop: true }
`);
  t.is(explainText(evaluate(set, CT)), [
    'Rules, in evaluation order:',
    '✔ ct-to-pacs (a.yaml:2, priority 10): matched',
    "    ✔ Modality = CT (was 'CT')",
    '    ✔ any of 2 (1 of 2 hold)',
    "        ✔ callingAe matches wildcard CT* (was 'CT1')",
    '        ✘ sourceAddress in 10.0.0.0/8 (was 127.0.0.1)',
    '✘ mr-to-ai (a.yaml:16, priority 20): no match',
    "    ✘ Modality in [MR, PT] (was 'CT')",
    '✔ archive (a.yaml:21, priority 100): matched',
    '    ✔ (no conditions) (matches everything)',
    "– never (a.yaml:23, priority 500): not evaluated, 'archive' matched and does not continue",
    'Decision:',
    "  forward to PACS (failover PACS_BACKUP), rule 'ct-to-pacs', with 2 modifications:",
    "      set InstitutionName = 'General Hospital'",
    "      replace /^P/ in PatientID with 'X'",
    "  forward to ARCHIVE, rule 'archive', unmodified",
  ].join('\n'));
});

test('explain: drop, reject and keep-only decisions say so', (t) => {
  const dropped = explainText(evaluate(rules('rules:\n  - { name: p, continue: true, then: { forward: [PACS] } }\n  - { name: d, then: { drop: true } }\n'), CT));
  t.true(dropped.endsWith([
    'Decision:',
    "  note: rule 'd' drops the instance: it is kept and recorded but forwarded nowhere",
    "  note: drop wins over forward: forward to PACS (rule 'p') not used",
  ].join('\n')), dropped);
  const rejected = explainText(evaluate(rules("rules:\n  - { name: r, then: { reject: { status: '0122', comment: Not for us } } }\n"), CT));
  t.true(rejected.endsWith("Decision:\n  reject: answer the C-STORE with 0x0122 SOP Class Not Supported, comment 'Not for us' (rule 'r'); nothing is stored or forwarded"), rejected);
  const kept = explainText(evaluate(rules('rules:\n  - { name: keep, then: {} }\n'), CT));
  t.true(kept.endsWith('Decision:\n  nothing to forward: the instance is kept and recorded (matched: keep)'), kept);
});

test('the shipped examples route a real instance as documented', (t) => {
  const set = loadRuleFiles(join(repo, 'routing-rules/examples'), { peers: ['PACS', 'PACS_BACKUP', 'ARCHIVE', 'AI', 'LAB3D', 'READING_QR'] });
  const dataset = parseHeader(datasetOf(makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, withPrivateTags: true, pixelBytes: 0 })), TS.explicitLE).dataset;
  const d = evaluate(set, { association: ASSOCIATION, dataset });
  t.deepEqual(d.matchedRules, ['ct-mr-to-pacs', 'chest-to-ai', 'ct-studies-to-3d-lab', 'priors-to-reading', 'archive-everything']);
  t.deepEqual(d.forward.map((f) => [f.peer, f.failover, f.modifications.length, f.completion?.trigger.per]), [['PACS', 'PACS_BACKUP', 3, undefined], ['AI', undefined, 3, undefined], ['LAB3D', undefined, 0, 'study'], ['ARCHIVE', undefined, 0, undefined]]);
  t.deepEqual(d.prefetch?.map((p) => [p.rule, p.archive, p.destination, p.skipIfDestinationHas, p.modalities]), [['priors-to-reading', 'ARCHIVE', 'READING', 'READING_QR', ['{{Modality}}']]]);
  t.regex(explainText(d), /LAB3D[^\n]*\n\s+held for study completion \(quiet 300 s/);
  t.regex(explainText(d), /from ARCHIVE to READING \(modalities \{\{Modality\}\}.*skipping priors READING_QR already holds\)/);
  const test = evaluate(set, { association: { ...ASSOCIATION, callingAeTitle: 'TEST_CT' }, dataset });
  t.deepEqual(test.reject, { status: 0xa700, comment: 'Test devices may not send to production' });
  const lab = evaluate(set, { association: { ...ASSOCIATION, remoteAddress: '10.20.3.4' }, dataset: { ...dataset, SOPClassUID: SOP.secondaryCapture } });
  t.true(lab.drop);
  const shipped = loadRuleFiles(join(repo, 'routing-rules'), { peers: [] });
  const keep = evaluate(shipped, { association: ASSOCIATION, dataset });
  t.deepEqual([keep.matchedRules, keep.forward, keep.drop], [['keep-everything'], [], false]);
});
