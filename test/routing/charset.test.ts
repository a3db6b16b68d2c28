// Rules on text in ISO 2022 character sets (issue 12 item 2): matching, templates, and what explain
// says (and the rewriter does) with a modified value the instance's character set cannot hold.
import test from 'ava';
import { decodeText, parseCharset } from '../../protocol/charset.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { rewriteHeader, RewriteError, topLevelElements } from '../../protocol/dataset-rewrite.ts';
import { evaluate, explainText } from '../../routing/evaluate.ts';
import { applyModifications } from '../../routing/modifications.ts';
import { parseRuleFiles, RulesError } from '../../routing/rules-loader.ts';
import type { RuleSet } from '../../routing/rule.types.ts';
import { encodeDataset, encodingOf, instanceElements, SOP, TS } from '../helpers/dicom-files.ts';

const PEERS = { peers: ['PACS'] };
const ASSOCIATION = { callingAeTitle: 'CANON', calledAeTitle: 'ROUTER', listener: 'main', remoteAddress: '127.0.0.1' };
const H31 = Buffer.from('Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B', 'latin1');
const IR87 = ['', 'ISO 2022 IR 87'];

/** A PS3.5 H.3.1 instance's header: \ISO 2022 IR 87, PatientName Yamada^Tarou=山田^太郎=やまだ^たろう. */
function header(ts: string = TS.explicitLE): Buffer {
  const els = instanceElements({ sopClassUid: SOP.ct, transferSyntaxUid: ts, pixelBytes: 0, sopInstanceUid: '1.2.3.4.5', studyInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3.4.6' });
  return encodeDataset(els.map((e) => (e.tag === 0x00080005 ? { ...e, value: IR87 } : e.tag === 0x00100010 ? { ...e, value: H31 } : e)), encodingOf(ts));
}

function rules(text: string): RuleSet {
  return parseRuleFiles([{ file: 'r.yaml', text }], PEERS, new Date(0));
}

test('equals and wildcard match the decoded ISO 2022 IR 87 name, and templates carry it', (t) => {
  const keys = parseHeader(header(), TS.explicitLE);
  t.is(keys.patientName, 'Yamada^Tarou=山田^太郎=やまだ^たろう');
  const set = rules(`rules:
  - name: exact
    continue: true
    when: { attribute: PatientName, equals: 'Yamada^Tarou=山田^太郎=やまだ^たろう' }
    then: {}
  - name: yamada
    when: { attribute: PatientName, wildcard: '*山田*' }
    then:
      forward: [PACS]
      modify:
        - set: { attribute: StudyDescription, template: '{{PatientName}}' }
`);
  const decision = evaluate(set, { association: ASSOCIATION, dataset: keys.dataset });
  t.deepEqual(decision.matchedRules, ['exact', 'yamada']);
  const { changes } = applyModifications(keys.dataset, decision.forward[0].modifications);
  t.deepEqual(changes, [{ keyword: 'StudyDescription', tag: '00081030', action: 'set', value: 'Yamada^Tarou=山田^太郎=やまだ^たろう' }]);
  const text = explainText(decision, keys.dataset);
  t.regex(text, /✔ PatientName = 'Yamada\^Tarou=山田\^太郎=やまだ\^たろう' \(was 'Yamada\^Tarou=山田\^太郎=やまだ\^たろう'\)/);
  t.regex(text, /✔ PatientName matches wildcard '\*山田\*'/);
  t.regex(text, /→ StudyDescription will be written as 'Yamada\^Tarou=山田\^太郎=やまだ\^たろう' in \\ISO 2022 IR 87/);
});

const modifyRule = (value: string, charset?: string) => `rules:
  - name: m
    then:
      forward: [PACS]
      modify:
        - set: { attribute: StudyDescription, value: '${value}' }
${charset ? `      charset: ${charset}\n` : ''}`;

/** The rewritten header's StudyDescription bytes and Specific Character Set. */
function rewritten(rule: string): { scs: string; studyDescription: Buffer; decoded: string } {
  const h = header();
  const keys = parseHeader(h, TS.explicitLE);
  const decision = evaluate(rules(rule), { association: ASSOCIATION, dataset: keys.dataset });
  const { changes, charset } = applyModifications(keys.dataset, decision.forward[0].modifications);
  const out = rewriteHeader(h, TS.explicitLE, changes, charset);
  const value = (tag: number) => {
    const s = topLevelElements(out, TS.explicitLE).find((e) => e.tag === tag)!;
    return Buffer.from(out.subarray(s.valueStart, s.end));
  };
  const scs = value(0x00080005).toString('latin1').trim();
  return { scs, studyDescription: value(0x00081030), decoded: decodeText(value(0x00081030), parseCharset(scs.split('\\')), 'LO').trim() };
}

test('a value JIS X 0208 holds is written in \\ISO 2022 IR 87 with its escape sequences; explain says so', (t) => {
  const r = rewritten(modifyRule('頭部'));
  t.is(r.scs, '\\ISO 2022 IR 87');
  t.deepEqual(r.studyDescription, Buffer.from('\x1b$BF,It\x1b(B', 'latin1'));
  t.is(r.decoded, '頭部');
  const keys = parseHeader(header(), TS.explicitLE);
  const text = explainText(evaluate(rules(modifyRule('頭部')), { association: ASSOCIATION, dataset: keys.dataset }), keys.dataset);
  t.regex(text, /with 1 modification:\n {6}set StudyDescription = '頭部'\n {6}→ StudyDescription will be written as '頭部' in \\ISO 2022 IR 87/);
});

test('a value outside JIS X 0208 converts the dataset to ISO_IR 192 by default; explain says so', (t) => {
  for (const rule of [modifyRule('Kopf Bär'), modifyRule('Kopf Bär', 'convert-to-utf8')]) {
    const r = rewritten(rule);
    t.is(r.scs, 'ISO_IR 192');
    t.deepEqual(r.studyDescription, Buffer.from('Kopf Bär ', 'utf8')); // 9 bytes, padded to 10
    const keys = parseHeader(header(), TS.explicitLE);
    const text = explainText(evaluate(rules(rule), { association: ASSOCIATION, dataset: keys.dataset }), keys.dataset);
    t.regex(text, /→ StudyDescription 'Kopf Bär' cannot be written in \\ISO 2022 IR 87: the dataset will be converted to ISO_IR 192/);
  }
  // The rest of the header follows: the name is now UTF-8.
  const h = header();
  const keys = parseHeader(h, TS.explicitLE);
  const { changes, charset } = applyModifications(keys.dataset, evaluate(rules(modifyRule('Kopf Bär')), { association: ASSOCIATION, dataset: keys.dataset }).forward[0].modifications);
  t.is(parseHeader(rewriteHeader(h, TS.explicitLE, changes, charset), TS.explicitLE).patientName, 'Yamada^Tarou=山田^太郎=やまだ^たろう');
});

test('charset: refuse makes such a value a RewriteError (a dead letter); explain says refused', (t) => {
  const err = t.throws(() => rewritten(modifyRule('Kopf Bär', 'refuse')), { instanceOf: RewriteError });
  t.is(err?.code, 'charset');
  t.is(err?.message, '"Kopf Bär" cannot be written in Specific Character Set "\\\\ISO 2022 IR 87"; the rule says charset: refuse');
  // A value the character set holds is still written under refuse.
  t.is(rewritten(modifyRule('頭部', 'refuse')).decoded, '頭部');
  const keys = parseHeader(header(), TS.explicitLE);
  const text = explainText(evaluate(rules(modifyRule('Kopf Bär', 'refuse')), { association: ASSOCIATION, dataset: keys.dataset }), keys.dataset);
  t.regex(text, /with 1 modification:\n {6}set StudyDescription = 'Kopf Bär'\n {6}charset: refuse\n {6}→ StudyDescription 'Kopf Bär' cannot be written in \\ISO 2022 IR 87: refused \(charset: refuse\); this forward will become a dead letter/);
});

test('charset is checked at load: a known policy, and only beside modify', (t) => {
  const set = rules(modifyRule('X', 'refuse'));
  t.deepEqual(set.rules[0].then.modify.at(-1), { op: 'charset', policy: 'refuse' });
  const bad = t.throws(() => rules(modifyRule('X', 'latin1')), { instanceOf: RulesError });
  t.regex(bad?.message ?? '', /charset/);
  t.regex(bad?.message ?? '', /convert-to-utf8/);
  const alone = t.throws(() => rules(`rules:\n  - name: m\n    then:\n      forward: [PACS]\n      charset: refuse\n`), { instanceOf: RulesError });
  t.regex(alone?.message ?? '', /r\.yaml:5:\d+: .*this rule has no modify/);
});
