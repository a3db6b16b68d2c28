// Completion triggers in rule files (issue 8): the syntax with its defaults, what the schema and the
// parser refuse (with file:line:column), explain's wording, and the study-level facts' conditions.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { checkConditions, missingRequired } from '../../routing/completion-conditions.ts';
import { evaluate, explainText } from '../../routing/evaluate.ts';
import { parseRuleFile, parseRuleFiles, RulesError } from '../../routing/rules-loader.ts';

const OPTS = { peers: ['PACS'] };
const messages = (t: ExecutionContext, text: string) =>
  (t.throws(() => parseRuleFile(text, 'r.yaml', OPTS), { instanceOf: RulesError }) as RulesError).problems.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`);

test('trigger and whenComplete parse, with defaults by per', (t) => {
  const [study, series] = parseRuleFile(`rules:
  - name: study
    when: { attribute: Modality, equals: CT }
    trigger:
      per: study
      requiredSeries:
        - modality: SR
        - seriesDescription: "AX T2*"
      afterFired: resend-study
    whenComplete:
      - modalities: { includes: [CT], excludes: [US] }
      - seriesCount: { min: 2 }
      - instanceCount: { min: 10, max: 5000 }
      - callingAe: { in: [CT1, "MR*"] }
    then: { forward: [PACS] }
  - name: series
    trigger: { per: series, quietSeconds: 20 }
    then: { forward: [PACS] }
`, 'r.yaml', OPTS);
  t.deepEqual(study.completion, {
    trigger: { per: 'study', quietSeconds: 300, maxWaitSeconds: 14_400, requiredSeries: [{ modality: 'SR' }, { seriesDescription: 'AX T2*' }], afterFired: 'resend-study' },
    whenComplete: [
      { kind: 'modalities', includes: ['CT'], excludes: ['US'] },
      { kind: 'seriesCount', min: 2 },
      { kind: 'instanceCount', min: 10, max: 5000 },
      { kind: 'callingAe', in: ['CT1', 'MR*'] },
    ],
  });
  t.deepEqual(series.completion, { trigger: { per: 'series', quietSeconds: 20, maxWaitSeconds: 3600, afterFired: 'new-instances' }, whenComplete: [] });
  t.is(parseRuleFile('rules:\n  - name: plain\n    then: { forward: [PACS] }\n', 'r.yaml', OPTS)[0].completion, undefined);
});

test('bad triggers are refused at load with their position', (t) => {
  t.deepEqual(messages(t, `rules:
  - name: a
    trigger: { per: series, requiredSeries: [{ modality: SR }] }
    then: { forward: [PACS] }
  - name: b
    trigger: { per: study, quietSeconds: 0 }
    then: { forward: [PACS] }
  - name: c
    trigger: { per: study, quietSeconds: 100, maxWaitSeconds: 50 }
    then: { forward: [PACS] }
  - name: d
    trigger: { per: study }
    then: { drop: true }
  - name: e
    whenComplete: [{ seriesCount: { min: 3, max: 2 } }]
    then: { forward: [PACS] }
  - name: f
    trigger: { per: study }
    whenComplete: [{ seriesCount: { min: 3, max: 2 } }, { modalities: { includes: [CT], excludes: [CT] } }]
    then: { forward: [PACS] }
`), [
    "3:29 rules[0].trigger.requiredSeries: requiredSeries lists the series a study waits for: it needs per: study (this trigger is per: series)",
    '6:42 rules[1].trigger.quietSeconds: must be more than 0 seconds (got 0)',
    '9:63 rules[2].trigger.maxWaitSeconds: the hard limit (maxWaitSeconds 50) must be at least the quiet time (quietSeconds 100)',
    "12:5 rules[3].trigger: trigger holds this rule's forwards until the series or study is complete, but the rule has no forward",
    '15:5 rules[4].whenComplete: whenComplete is checked when a series or study is complete: it needs a trigger (per: series or per: study) in the same rule',
    '19:42 rules[5].whenComplete[0].seriesCount.min: min (3) is above max (2): no series count can match',
    '19:71 rules[5].whenComplete[1].modalities: CT cannot be both included and excluded',
  ]);
});

test('the schema refuses unknown keys and values in a trigger', (t) => {
  const problems = messages(t, `rules:
  - name: a
    trigger: { per: patient, quiet: 3 }
    whenComplete: [{ seriesCount: { min: 1 }, instanceCount: { min: 1 } }]
    then: { forward: [PACS] }
`);
  t.true(problems.some((p) => p.startsWith('3:') && p.includes('trigger.per')), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('3:') && p.includes('quiet')), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('4:')), problems.join('\n'));
});

test('explain says the forward is held for completion', (t) => {
  const set = parseRuleFiles([{ file: 'r.yaml', text: 'rules:\n  - name: s\n    trigger: { per: study }\n    whenComplete: [{ seriesCount: { min: 2 } }]\n    then: { forward: [PACS] }\n' }], OPTS);
  const d = evaluate(set, { association: { callingAeTitle: 'CT1', calledAeTitle: 'R', listener: 'main', remoteAddress: '127.0.0.1' }, dataset: { Modality: 'CT' } });
  t.truthy(d.forward[0].completion);
  const text = explainText(d);
  t.true(text.includes('held for study completion (quiet 300 s'), text);
  t.true(text.includes('then only if series count >= 2'), text);
});

test('study-level facts: required series by wildcard, conditions with why', (t) => {
  const series = { a: { modality: 'CT', instances: 5 }, b: { modality: 'MR', description: 'AX T2 FLAIR ', instances: 3 } };
  t.deepEqual(missingRequired([{ modality: 'C?' }, { seriesDescription: 'AX T2*' }, { modality: 'SR' }], series), [{ modality: 'SR' }]);
  const facts = { series, instances: 8, callingAes: ['CT1'] };
  t.deepEqual(checkConditions([{ kind: 'modalities', includes: ['CT'] }, { kind: 'callingAe', in: ['CT*'] }, { kind: 'instanceCount', max: 10 }], facts), { ok: true, failed: [] });
  t.deepEqual(checkConditions([{ kind: 'modalities', excludes: ['MR'] }, { kind: 'seriesCount', min: 3 }], facts), {
    ok: false, failed: ['modalities include none of MR (seen: modalities CT/MR)', 'series count >= 3 (seen: 2 series)'],
  });
});
