import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadRuleFiles, parseRuleFile, parseRuleFiles, RulesError } from '../../routing/rules-loader.ts';
import type { RulesProblem } from '../../routing/rules-loader.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PEERS = { peers: ['PACS', 'PACS_BACKUP', 'ARCHIVE'] };

function errorOf(t: ExecutionContext, text: string, file = 'r.yaml', opts = PEERS): RulesError {
  return t.throws(() => parseRuleFile(text, file, opts), { instanceOf: RulesError }) as RulesError;
}

/**
 * Expects a problem at `path`, placed at `line` and at the column where `needle` starts in that
 * line (its `nth` occurrence), and printed as "r.yaml:line:col: path: message".
 */
function problemAt(t: ExecutionContext, text: string, path: string, line: number, needle: string, opts = PEERS, nth = 1): RulesProblem {
  const error = errorOf(t, text, 'r.yaml', opts);
  const problem = error.problems.find((p) => p.path === path);
  if (!problem) return t.fail(`no problem at ${path}; got:\n${error.message}`) as never;
  const lineText = text.split('\n')[line - 1] ?? '';
  let index = -1;
  for (let i = 0; i < nth; i++) index = lineText.indexOf(needle, index + 1);
  if (index < 0) return t.fail(`'${needle}' is not in line ${line}: ${lineText}`) as never;
  const column = index + 1;
  t.is(problem.file, 'r.yaml');
  t.is(`${problem.line}:${problem.column}`, `${line}:${column}`, `expected at '${needle}':\n${error.message}`);
  const prefix = path ? `r.yaml:${line}:${column}: ${path}: ` : `r.yaml:${line}:${column}: `;
  t.true(error.message.split('\n').includes(prefix + problem.message), `expected "${prefix}" in:\n${error.message}`);
  return problem;
}

const rule = (body: string) => `rules:\n  - name: r1\n${body}`;

test('a valid file gives rules with defaults, file and line', (t) => {
  const rules = parseRuleFile(`# comment
rules:
  - name: ct
    priority: 10
    continue: true
    when: { attribute: Modality, equals: CT }
    then:
      forward: [{ peer: PACS, failover: PACS_BACKUP }, ARCHIVE]
  - name: keep
    then: {}
`, 'f.yaml', PEERS);
  t.deepEqual(rules[0], {
    name: 'ct', priority: 10, continue: true,
    when: [{ kind: 'attribute', attribute: { kind: 'tag', tag: '00080060', keyword: 'Modality', vr: 'CS' }, match: { op: 'equals', value: 'CT' } }],
    then: { forward: [{ peer: 'PACS', failover: 'PACS_BACKUP' }, { peer: 'ARCHIVE' }], modify: [], drop: false },
    file: 'f.yaml', line: 3,
  });
  t.deepEqual(rules[1], { name: 'keep', priority: 100, continue: false, when: [], then: { forward: [], modify: [], drop: false }, file: 'f.yaml', line: 9 });
  // plain data: a rule set survives JSON
  t.deepEqual(JSON.parse(JSON.stringify(rules)), rules);
});

test('empty files, comment-only files and `rules:` with nothing under it have no rules', (t) => {
  t.deepEqual(parseRuleFile('', 'a.yaml', PEERS), []);
  t.deepEqual(parseRuleFile('# only a comment\n', 'a.yaml', PEERS), []);
  t.deepEqual(parseRuleFile('rules:\n#  - name: x\n', 'a.yaml', PEERS), []);
  t.deepEqual(parseRuleFile('rules: []\n', 'a.yaml', PEERS), []);
});

test('YAML syntax errors and duplicate keys are located', (t) => {
  const p = problemAt(t, 'rules:\n  - name: a\n    then: {\n', '', 4, '');
  t.regex(p.message, /^YAML syntax error: /);
  t.regex(problemAt(t, rule('    then: {}\n    then: {}\n'), '', 4, 'then').message, /unique/);
});

test('schema: unknown fields (with a suggestion), wrong types, missing fields', (t) => {
  t.is(problemAt(t, rule('    when: { attribute: Modality, equlas: CT }\n    then: {}\n'), 'rules[0].when.equlas', 3, 'equlas').message, "unknown field 'equlas' (did you mean 'equals'?)");
  t.is(problemAt(t, rule('    then: { forwrd: [PACS] }\n'), 'rules[0].then.forwrd', 3, 'forwrd').message, "unknown field 'forwrd' (did you mean 'forward'?)");
  t.regex(problemAt(t, 'rulez: []\n', 'rulez', 1, 'rulez').message, /unknown field 'rulez' \(did you mean 'rules'\?\)/);
  t.is(problemAt(t, rule('    priority: high\n    then: {}\n'), 'rules[0].priority', 3, 'high').message, 'must be an integer from -1000000 to 1000000 (got "high")');
  t.is(problemAt(t, rule('    continue: yes\n    then: {}\n'), 'rules[0].continue', 3, 'yes').message, 'must be true or false (got "yes")');
  t.regex(problemAt(t, 'rules:\n  - name: a\n', 'rules[0].then', 2, 'name').message, /^required field is missing \(expected a map of actions/);
  t.regex(problemAt(t, 'rules:\n  - then: {}\n', 'rules[0].name', 2, 'then').message, /^required field is missing \(expected a rule name/);
  t.is(problemAt(t, rule('    then: { forward: [PACS, 3] }\n'), 'rules[0].then.forward[1]', 3, '3').message, 'must be a peer name or {peer, failover} (got 3)');
  t.regex(problemAt(t, rule('    when: 5\n    then: {}\n'), 'rules[0].when', 3, '5').message, /must be a condition or a list of conditions \(got 5\)/);
  t.regex(problemAt(t, rule('    when: { callingAe: 5 }\n    then: {}\n'), 'rules[0].when.callingAe', 3, '5').message, /must be a text \(DICOM wildcards \* and \? allowed\), \{in: \[\.\.\.\]\} or \{regex: '\.\.\.'\} \(got 5\)/);
  t.regex(problemAt(t, rule('    when: { callingAe: { regx: A } }\n    then: {}\n'), 'rules[0].when.callingAe.regx', 3, 'regx').message, /unknown field 'regx' \(did you mean 'regex'\?\)/);
  t.regex(problemAt(t, '- a\n', '', 1, '-').message, /^the file must be a map of fields \(got a list\)/);
  t.regex(problemAt(t, rule('    then: { forward: [] }\n'), 'rules[0].then.forward', 3, '[]').message, /at least 1 item/);
});

test('rule names: well-formed and unique within a file', (t) => {
  t.regex(problemAt(t, 'rules:\n  - name: "ct to pacs"\n    then: {}\n', 'rules[0].name', 2, '"ct to pacs"').message, /^must be a rule name: letters, digits/);
  t.is(problemAt(t, 'rules:\n  - name: a\n    then: {}\n  - name: a\n    then: {}\n', 'rules[1].name', 4, 'a', PEERS, 2).message, "duplicate rule name 'a' (also used by rules[0])");
});

test('peers must be configured; failover differs; no peer twice in one rule', (t) => {
  const text = rule('    then:\n      forward:\n        - { peer: PACSX, failover: PACS }\n        - ARCHIV\n        - { peer: PACS, failover: PACS }\n        - PACS_BACKUP\n        - PACS_BACKUP\n');
  t.is(problemAt(t, text, 'rules[0].then.forward[0].peer', 5, 'PACSX').message, "unknown peer 'PACSX' (configured: PACS, PACS_BACKUP, ARCHIVE); did you mean 'PACS'?");
  t.is(problemAt(t, text, 'rules[0].then.forward[1]', 6, 'ARCHIV').message, "unknown peer 'ARCHIV' (configured: PACS, PACS_BACKUP, ARCHIVE); did you mean 'ARCHIVE'?");
  t.is(problemAt(t, text, 'rules[0].then.forward[2].failover', 7, 'PACS', PEERS, 2).message, "the failover peer must differ from the peer ('PACS')");
  t.is(problemAt(t, text, 'rules[0].then.forward[4]', 9, 'PACS_BACKUP').message, "peer 'PACS_BACKUP' is already in this list (forward[3])");
  const none = problemAt(t, rule('    then: { forward: [PACS] }\n'), 'rules[0].then.forward[0]', 3, 'PACS', { peers: [] });
  t.is(none.message, "unknown peer 'PACS' (no peers are configured)");
});

test('the message format of the brief: file:line:col: path: unknown peer (configured: ...)', (t) => {
  const error = errorOf(t, 'rules:\n  - name: a\n    then: { forward: [{ peer: XRAY }] }\n', 'routing-rules/x.yaml', { peers: ['PACS', 'ARCHIVE'] });
  t.is(error.message, "routing-rules/x.yaml:3:31: rules[0].then.forward[0].peer: unknown peer 'XRAY' (configured: PACS, ARCHIVE)");
});

test('attribute keywords and tags', (t) => {
  const when = (c: string) => rule(`    when:\n      - ${c}\n    then: {}\n`);
  t.is(problemAt(t, when('{ attribute: Modalty, equals: CT }'), 'rules[0].when[0].attribute', 4, 'Modalty').message, "unknown attribute keyword 'Modalty' (did you mean 'Modality'?)");
  t.regex(problemAt(t, when("{ attribute: '(0008,0060)', equals: CT }"), 'rules[0].when[0].attribute', 4, "'(0008,0060)'").message, /a tag goes in tag:/);
  t.regex(problemAt(t, when("{ tag: '(0008,006G)', equals: CT }"), 'rules[0].when[0].tag', 4, "'(0008,006G)'").message, /^must be a tag such as '\(0010,0020\)'.*\(got '\(0008,006G\)'\)$/);
  t.regex(problemAt(t, when("{ tag: '(0002,0010)', exists: true }"), 'rules[0].when[0].tag', 4, "'(0002,0010)'").message, /file meta information/);
  t.regex(problemAt(t, when("{ tag: '(0010,xx10)', creator: X, exists: true }"), 'rules[0].when[0].tag', 4, "'(0010,xx10)'").message, /group 0010 is not private/);
  t.regex(problemAt(t, when("{ tag: '(0009,xx01)', exists: true }"), 'rules[0].when[0].tag', 4, "'(0009,xx01)'").message, /needs its creator: add creator:/);
  t.regex(problemAt(t, when("{ tag: '(0009,1001)', creator: X, exists: true }"), 'rules[0].when[0].tag', 4, "'(0009,1001)'").message, /relative to its block as \(gggg,xxEE\): '\(0009,xx01\)'/);
  t.regex(problemAt(t, when('{ attribute: Modality, creator: X, exists: true }'), 'rules[0].when[0].creator', 4, 'creator').message, /creator goes with a private tag/);
  t.is(problemAt(t, when("{ attribute: Modality, tag: '00080060', equals: CT }"), 'rules[0].when[0].tag', 4, 'tag').message, 'give either attribute or tag, not both');
  // all accepted spellings of a tag
  for (const tag of ['(0010,0020)', '00100020', '0010,0020', '(0010, 0020)']) {
    const [r] = parseRuleFile(rule(`    when: { tag: '${tag}', exists: true }\n    then: {}\n`), 'r.yaml', PEERS);
    t.deepEqual(r.when[0], { kind: 'attribute', attribute: { kind: 'tag', tag: '00100020', keyword: 'PatientID', vr: 'LO' }, match: { op: 'exists', value: true } }, tag);
  }
  const [p] = parseRuleFile(rule("    when: { tag: '(0009,XX01)', creator: ' ROUTER TEST ', exists: true }\n    then: {}\n"), 'r.yaml', PEERS);
  t.deepEqual(p.when[0], { kind: 'attribute', attribute: { kind: 'private', group: '0009', element: '01', creator: 'ROUTER TEST' }, match: { op: 'exists', value: true } });
});

test('condition shape: one kind, one operator, operators only on attributes', (t) => {
  const when = (c: string) => rule(`    when:\n      - ${c}\n    then: {}\n`);
  t.regex(problemAt(t, when('{ attribute: Modality, equals: CT, wildcard: "C*" }'), 'rules[0].when[0].wildcard', 4, 'wildcard').message, /^one operator per condition: this one has 'equals' and 'wildcard'/);
  t.regex(problemAt(t, when('{ attribute: Modality }'), 'rules[0].when[0]', 4, '{').message, /^an attribute condition needs one operator: equals, in, wildcard, regex, range, exists$/);
  t.regex(problemAt(t, when('{ equals: CT }'), 'rules[0].when[0].equals', 4, 'equals').message, /^equals tests an attribute: add attribute: Keyword/);
  t.regex(problemAt(t, when('{ callingAe: A, calledAe: B }'), 'rules[0].when[0].calledAe', 4, 'calledAe').message, /^one condition per map: this one has both callingAe and calledAe/);
  t.regex(problemAt(t, when('{ callingAe: A, equals: B }'), 'rules[0].when[0].equals', 4, 'equals').message, /^equals belongs to attribute conditions, not to callingAe$/);
  t.regex(problemAt(t, when('{ callingAe: { in: [A], regex: B } }'), 'rules[0].when[0].callingAe.regex', 4, 'regex').message, /^give either in or regex, not both$/);
  t.regex(problemAt(t, when('{}'), 'rules[0].when[0]', 4, '{}').message, /^empty condition: expected one of all, any, not/);
  t.regex(problemAt(t, when('{ all: [] }'), 'rules[0].when[0].all', 4, '[]').message, /at least 1 item/);
  t.regex(problemAt(t, when("{ attribute: Modality, equals: '' }"), 'rules[0].when[0].equals', 4, "''").message, /^an empty value never matches .*: use exists: false$/);
  t.regex(problemAt(t, when("{ attribute: Modality, in: [CT, ' '] }"), 'rules[0].when[0].in[1]', 4, "' '").message, /^an empty value never matches/);
  t.regex(problemAt(t, when('{ attribute: ReferencedStudySequence, equals: X }'), 'rules[0].when[0].equals', 4, 'equals').message, /is a sequence: only exists applies/);
  // nested problems are found too
  t.regex(problemAt(t, when('{ any: [{ not: { attribute: Modality, equalz: CT } }] }'), 'rules[0].when[0].any[0].not.equalz', 4, 'equalz').message, /unknown field 'equalz'/);
});

test('regexes must compile', (t) => {
  const text = rule("    when:\n      - { attribute: PatientID, regex: '(' }\n      - { callingAe: { regex: '[' } }\n    then: { forward: [PACS], modify: [{ replace: { attribute: PatientID, regex: '+', with: '' } }] }\n");
  t.regex(problemAt(t, text, 'rules[0].when[0].regex', 4, "'('").message, /^invalid regular expression: .*Unterminated group/);
  t.regex(problemAt(t, text, 'rules[0].when[1].callingAe.regex', 5, "'['").message, /^invalid regular expression: .*Unterminated character class/);
  t.regex(problemAt(t, text, 'rules[0].then.modify[0].replace.regex', 6, "'+'").message, /^invalid regular expression: .*Nothing to repeat/);
});

test('ranges: bounds of the right kind and in order', (t) => {
  const when = (c: string) => rule(`    when:\n      - ${c}\n    then: {}\n`);
  t.is(problemAt(t, when('{ attribute: StudyDate, range: { from: 20241231, to: 20240101 } }'), 'rules[0].when[0].range.to', 4, '20240101').message, 'the range is empty: from (20241231) is after to (20240101)');
  t.regex(problemAt(t, when('{ attribute: StudyDate, range: { from: 20241301 } }'), 'rules[0].when[0].range.from', 4, '20241301').message, /^must be a date YYYYMMDD \(or YYYY, YYYYMM\) \(got 20241301\)$/);
  t.regex(problemAt(t, when('{ attribute: StudyTime, range: { from: 080000 } }'), 'rules[0].when[0].range.from', 4, '080000').message, /YAML reads an unquoted 080000 as the number 80000/);
  t.regex(problemAt(t, when("{ attribute: StudyTime, range: { from: '2500' } }"), 'rules[0].when[0].range.from', 4, "'2500'").message, /^must be a time HHMMSS/);
  t.regex(problemAt(t, when('{ attribute: SeriesNumber, range: { from: ten } }'), 'rules[0].when[0].range.from', 4, 'ten').message, /^must be a number/);
  t.is(problemAt(t, when('{ attribute: SeriesNumber, range: { from: 10, to: 2 } }'), 'rules[0].when[0].range.to', 4, '2 }').message, 'the range is empty: from (10) is after to (2)');
  t.regex(problemAt(t, when('{ attribute: StudyDate, range: {} }'), 'rules[0].when[0].range', 4, '{}').message, /^a range needs from, to or both$/);
  t.regex(problemAt(t, when("{ tag: '(0009,xx01)', creator: X, range: { from: abc } }"), 'rules[0].when[0].range', 4, '{ from').message, /^cannot tell what this range compares/);
  t.regex(problemAt(t, when('{ attribute: PixelData, range: { from: 1 } }'), 'rules[0].when[0].range', 4, '{ from').message, /binary data/);
  // the precision rule: from '2024' to '2024' is not empty
  t.notThrows(() => parseRuleFile(when("{ attribute: StudyDate, range: { from: '2024', to: '202401' } }"), 'r.yaml', PEERS));
});

test('association conditions: AE titles and addresses are checked', (t) => {
  const when = (c: string) => rule(`    when:\n      - ${c}\n    then: {}\n`);
  t.regex(problemAt(t, when('{ callingAe: THIS_TITLE_IS_TOO_LONG }'), 'rules[0].when[0].callingAe', 4, 'THIS_TITLE_IS_TOO_LONG').message, /at most 16 characters/);
  t.regex(problemAt(t, when('{ calledAe: { in: [OK, "A\\\\B"] } }'), 'rules[0].when[0].calledAe.in[1]', 4, '"A').message, /backslash/);
  t.regex(problemAt(t, when('{ sourceAddress: 10.0.0.0/33 }'), 'rules[0].when[0].sourceAddress', 4, '10.0.0.0/33').message, /0 to 32/);
  t.regex(problemAt(t, when('{ sourceAddress: [10.0.0.0/8, 300.1.1.1] }'), 'rules[0].when[0].sourceAddress[1]', 4, '300.1.1.1').message, /IPv4 or IPv6 address or CIDR/);
  // wildcards and the listener name are free text
  t.notThrows(() => parseRuleFile(when('{ callingAe: "CT_*_LONGER_THAN_16_CHARS" }'), 'r.yaml', PEERS));
});

test('actions: reject, drop, modify and prefetch combinations', (t) => {
  t.regex(problemAt(t, rule('    then: { forward: [PACS], reject: { status: 0xA700 } }\n'), 'rules[0].then.reject', 3, 'reject').message, /^reject answers the C-STORE with a failure and stores nothing: it cannot be combined with 'forward'$/);
  t.regex(problemAt(t, rule('    then: { forward: [PACS], drop: true }\n'), 'rules[0].then.drop', 3, 'drop').message, /^drop: true forwards nowhere: remove forward/);
  t.regex(problemAt(t, rule('    then: { modify: [{ remove: { attribute: PatientName } }] }\n'), 'rules[0].then.modify', 3, 'modify').message, /^modify changes what this rule forwards, but it has no forward/);
  t.deepEqual(errorOf(t, rule('    then: { prefetch: 3 }\n')).problems.map((p) => p.message), ['must be a map of fields (got 3)']);
  t.truthy(errorOf(t, rule('    then: { prefetch: { archive: ARCHIVE } }\n')).problems.find((p) => /destination/.test(p.path + p.message)));
  t.regex(problemAt(t, rule('    then: { prefetch: { archive: NOPE, destination: WS } }\n'), 'rules[0].then.prefetch.archive', 3, 'NOPE').message, /^unknown peer 'NOPE'/);
  t.regex(problemAt(t, rule("    then: { prefetch: { archive: ARCHIVE, destination: WS, description: '(' } }\n"), 'rules[0].then.prefetch.description', 3, "'('").message, /invalid regular expression/);
  t.truthy(errorOf(t, rule("    then: { prefetch: { archive: ARCHIVE, destination: WS, within: '5 years' } }\n")).problems.find((p) => p.path === 'rules[0].then.prefetch.within'));
  t.regex(problemAt(t, rule('    then: { reject: { status: 0xA700 }, prefetch: { archive: ARCHIVE, destination: WS } }\n'), 'rules[0].then.reject', 3, 'reject').message, /cannot be combined with 'prefetch'/);
  // defaults, and the window in days
  t.deepEqual(parseRuleFile(rule('    then: { prefetch: { archive: ARCHIVE, destination: WS } }\n'), 'r.yaml', PEERS)[0].then.prefetch,
    { archive: 'ARCHIVE', destination: 'WS', queryModel: 'study-root', excludeTriggeringStudy: true, max: 3, dedupHours: 24 });
  t.like(parseRuleFile(rule("    then: { drop: true, prefetch: { archive: ARCHIVE, destination: WS, within: 5y, modalities: [CT, MR], max: 2, excludeTriggeringStudy: false, queryModel: patient-root } }\n"), 'r.yaml', PEERS)[0].then,
    { drop: true, prefetch: { withinDays: 1825, modalities: ['CT', 'MR'], max: 2, excludeTriggeringStudy: false, queryModel: 'patient-root' } });
  // drop: false is no drop at all, and may stand next to forward
  t.is(parseRuleFile(rule('    then: { forward: [PACS], drop: false }\n'), 'r.yaml', PEERS)[0].then.forward.length, 1);
});

test('reject statuses: failures only, written in hex', (t) => {
  const reject = (status: string, comment = '') => rule(`    then: { reject: { status: ${status}${comment} } }\n`);
  const ok = (status: string) => parseRuleFile(reject(status), 'r.yaml', PEERS)[0].then.reject;
  t.deepEqual(ok('0xA700'), { status: 0xa700, comment: "rejected by routing rule 'r1'" });
  t.is(ok("'A900'")!.status, 0xa900);
  t.is(ok("'C001'")!.status, 0xc001);
  t.is(ok("'0x0122'")!.status, 0x0122);
  t.is(ok('0x0124')!.status, 0x0124);
  t.deepEqual(parseRuleFile(reject('0xC000', ', comment: Not here'), 'r.yaml', PEERS)[0].then.reject, { status: 0xc000, comment: 'Not here' });
  t.regex(problemAt(t, reject('0xB000'), 'rules[0].then.reject.status', 3, '0xB000').message, /^0xB000 Coercion of Data Elements is a warning status; reject needs a failure status/);
  t.regex(problemAt(t, reject("'0000'"), 'rules[0].then.reject.status', 3, "'0000'").message, /is a success status/);
  t.regex(problemAt(t, reject('0xFF00'), 'rules[0].then.reject.status', 3, '0xFF00').message, /is a pending status/);
  t.is(problemAt(t, reject('0122'), 'rules[0].then.reject.status', 3, '0122').message, "write the status in hexadecimal: 0x0122 or '0122' in quotes (YAML reads 0122 as the decimal number 122)");
  t.regex(problemAt(t, reject("'A7000'"), 'rules[0].then.reject.status', 3, "'A7000'").message, /must be a status of 4 hex digits/);
  t.regex(problemAt(t, reject('0xA700', `, comment: '${'x'.repeat(65)}'`), 'rules[0].then.reject.comment', 3, "'xxx").message, /at most 64 characters/);
  t.regex(problemAt(t, reject('0xA700', ', comment: "Zürich"'), 'rules[0].then.reject.comment', 3, '"Zürich"').message, /printable ASCII/);
});

test('modifications: targets, values against the VR, templates', (t) => {
  const mod = (m: string) => rule(`    then:\n      forward: [PACS]\n      modify:\n        - ${m}\n`);
  const at = (path: string) => `rules[0].then.modify[0].${path}`;
  t.regex(problemAt(t, mod('{ set: { attribute: StudyDate, value: yesterday } }'), at('set.value'), 6, 'yesterday').message, /^must be a date YYYYMMDD \(VR DA\) \(got "yesterday"\)$/);
  t.regex(problemAt(t, mod('{ set: { attribute: Modality, value: ct } }'), at('set.value'), 6, 'ct }').message, /upper-case letters/);
  t.regex(problemAt(t, mod('{ set: { attribute: SeriesNumber, value: one } }'), at('set.value'), 6, 'one').message, /must be an integer \(VR IS\)/);
  t.regex(problemAt(t, mod('{ set: { attribute: StudyID, value: THIS_IS_TOO_LONG_ID } }'), at('set.value'), 6, 'THIS_IS_TOO_LONG_ID').message, /at most 16 characters \(VR SH\), this one has 19/);
  t.regex(problemAt(t, mod('{ set: { attribute: InstitutionName, value: [A, B] } }'), at('set.value'), 6, '[A, B]').message, /takes a single value \(VM 1\), got 2/);
  t.regex(problemAt(t, mod('{ set: { attribute: InstitutionName, value: "A\\\\B" } }'), at('set.value'), 6, '"A').message, /give several values as a list/);
  t.regex(problemAt(t, mod('{ set: { attribute: StudyInstanceUID, value: 1.2.03 } }'), at('set.value'), 6, '1.2.03').message, /leading zero/);
  t.regex(problemAt(t, mod('{ set: { attribute: InstitutionName } }'), at('set'), 6, '{ attribute').message, /^set needs value \(a fixed value\) or template$/);
  t.regex(problemAt(t, mod('{ set: { attribute: InstitutionName, value: A, template: B } }'), at('set.template'), 6, 'template').message, /^give either value or template, not both$/);
  t.regex(problemAt(t, mod('{ set: { attribute: PixelData, value: A } }'), at('set.attribute'), 6, 'PixelData').message, /^Pixel Data cannot be modified$/);
  t.regex(problemAt(t, mod('{ set: { attribute: ReferencedStudySequence, value: A } }'), at('set.attribute'), 6, 'ReferencedStudySequence').message, /is a sequence: only remove applies/);
  t.regex(problemAt(t, mod('{ remove: { attribute: SpecificCharacterSet } }'), at('remove.attribute'), 6, 'SpecificCharacterSet').message, /SpecificCharacterSet cannot be modified/);
  t.regex(problemAt(t, mod("{ remove: { tag: '(0009,0010)' } }"), at('remove.tag'), 6, "'(0009,0010)'").message, /Private Creator element/);
  t.regex(problemAt(t, mod('{ remove: {} }'), at('remove'), 6, '{}').message, /^remove needs the attribute to change/);
  t.regex(problemAt(t, mod('{ replace: { attribute: Rows, regex: "1", with: "2" } }'), at('replace'), 6, '{ attribute').message, /replace works on text; Rows is a binary number \(VR US\)/);
  t.regex(problemAt(t, mod('{ copy: { from: AccesionNumber, to: StudyID } }'), at('copy.from'), 6, 'AccesionNumber').message, /unknown attribute keyword 'AccesionNumber' \(did you mean 'AccessionNumber'\?\)/);
  t.regex(problemAt(t, mod('{ copy: { from: AccessionNumber, to: PixelData } }'), at('copy.to'), 6, 'PixelData').message, /Pixel Data cannot be modified/);
  t.regex(problemAt(t, mod("{ copy: { from: '(0009,xx01)', to: StudyID } }"), at('copy.from'), 6, "'(0009,xx01)'").message, /private element by creator/);
  t.regex(problemAt(t, mod('{ set: { attribute: PatientName, template: "{{PatientIDD}}^{{AccessionNumber}}" } }'), at('set.template'), 6, '"').message, /^unknown attribute keyword 'PatientIDD' \(did you mean 'PatientID'\?\) in \{\{PatientIDD\}\}$/);
  t.regex(problemAt(t, mod('{ set: { attribute: PatientName, template: "{{PatientID" } }'), at('set.template'), 6, '"').message, /^unclosed '\{\{'/);
  t.regex(problemAt(t, mod('{ set: { attribute: PatientName, template: "A{{}}" } }'), at('set.template'), 6, '"').message, /^empty placeholder/);
  t.regex(problemAt(t, mod('{ set: { attribute: PatientName, template: "A}}" } }'), at('set.template'), 6, '"').message, /without a matching/);
  t.regex(problemAt(t, mod('{ set: { attribute: A, value: B }, remove: { attribute: C } }'), 'rules[0].then.modify[0].remove', 6, 'remove').message, /^one modification per list item/);
  // accepted: templates by keyword or tag, values of every common VR
  t.notThrows(() => parseRuleFile(mod("{ set: { attribute: PatientName, template: '{{ PatientID }}^{{(0008,0050)}}' } }"), 'r.yaml', PEERS));
  for (const [attribute, value] of [['PatientAge', '045Y'], ['StudyTime', "'101530.5'"], ['AcquisitionDateTime', '20240115101530'], ['ImageType', '[DERIVED, SECONDARY]'], ['Rows', '512'], ['SliceThickness', '1.25'], ['InstitutionName', "''"], ['PatientName', "'DOE^JOHN=ドウ^ジョン'"]]) {
    t.notThrows(() => parseRuleFile(mod(`{ set: { attribute: ${attribute}, value: ${value} } }`), 'r.yaml', PEERS), attribute);
  }
});

test('several problems are all reported, sorted by position', (t) => {
  const error = errorOf(t, `rules:
  - name: a
    when: [{ attribute: Modalty, equals: CT }, { callingAe: { in: [A], regex: x } }]
    then: { forward: [PACSX], prefetch: { archive: ARCHIVEX, destination: WS } }
  - name: "b c"
    priority: x
    then: { reject: { status: 0xB000 } }
`);
  t.deepEqual(error.problems.map((p) => `${p.line}:${p.column} ${p.path}`), [
    '3:25 rules[0].when[0].attribute',
    '3:72 rules[0].when[1].callingAe.regex',
    '4:23 rules[0].then.forward[0]',
    '4:52 rules[0].then.prefetch.archive',
    '5:11 rules[1].name',
    '6:15 rules[1].priority',
    '7:31 rules[1].then.reject.status',
  ]);
  t.is(error.message.split('\n').length, 7);
});

test('several files: sorted by name, ordered by priority then file then position, names unique across files', (t) => {
  const set = parseRuleFiles([
    { file: 'a.yaml', text: 'rules:\n  - { name: a1, then: {} }\n  - { name: a2, priority: 5, then: {} }\n' },
    { file: 'b.yaml', text: 'rules:\n  - { name: b1, priority: 5, then: {} }\n  - { name: b2, priority: -1, then: {} }\n  - { name: b3, then: {} }\n' },
  ], PEERS, new Date('2025-01-02T03:04:05Z'));
  t.deepEqual(set.rules.map((r) => r.name), ['b2', 'a2', 'b1', 'a1', 'b3']);
  t.deepEqual(set.files, ['a.yaml', 'b.yaml']);
  t.is(set.loadedAt, '2025-01-02T03:04:05.000Z');
  const error = t.throws(() => parseRuleFiles([
    { file: 'a.yaml', text: 'rules:\n  - { name: same, then: {} }\n' },
    { file: 'b.yaml', text: '# another\nrules:\n  - { name: same, then: {} }\n' },
  ], PEERS), { instanceOf: RulesError })!;
  t.is(error.message, "b.yaml:3:5: duplicate rule name 'same' (also defined at a.yaml:2)");
});

test('loadRuleFiles reads *.yaml and *.yml in name order; one bad file refuses the set', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'b.yml'), 'rules:\n  - { name: b, then: {} }\n');
  writeFileSync(join(dir, 'a.yaml'), 'rules:\n  - { name: a, then: {} }\n');
  writeFileSync(join(dir, 'notes.txt'), 'not rules');
  writeFileSync(join(dir, '.hidden.yaml'), 'garbage: [');
  mkdirSync(join(dir, 'sub.yaml'));
  const set = loadRuleFiles(dir, PEERS);
  t.deepEqual(set.files, [join(dir, 'a.yaml'), join(dir, 'b.yml')]);
  t.deepEqual(set.rules.map((r) => [r.name, r.file]), [['a', join(dir, 'a.yaml')], ['b', join(dir, 'b.yml')]]);
  writeFileSync(join(dir, 'c.yaml'), 'rules:\n  - { name: c, then: { forward: [NOPE] } }\n');
  const error = t.throws(() => loadRuleFiles(dir, PEERS), { instanceOf: RulesError })!;
  t.is(error.message, `${join(dir, 'c.yaml')}:2:34: rules[0].then.forward[0]: unknown peer 'NOPE' (configured: PACS, PACS_BACKUP, ARCHIVE)`);
  const missing = t.throws(() => loadRuleFiles(join(dir, 'nope'), PEERS), { instanceOf: RulesError })!;
  t.is(missing.message, `${join(dir, 'nope')}: cannot read the rules folder: no such folder`);
});

test('the shipped rule files load: the default with no peers, the fuller example with its peers', (t) => {
  const shipped = loadRuleFiles(join(repo, 'routing-rules'), { peers: [] });
  t.deepEqual(shipped.rules.map((r) => r.name), ['keep-everything']);
  t.deepEqual(shipped.rules[0].then, { forward: [], modify: [], drop: false });
  t.deepEqual([shipped.rules[0].priority, shipped.rules[0].continue], [1000, true], 'it never hides the rules of other files');
  t.deepEqual(shipped.rules[0].when, []);
  const example = loadRuleFiles(join(repo, 'routing-rules/examples'), { peers: ['PACS', 'PACS_BACKUP', 'ARCHIVE', 'AI', 'LAB3D', 'READING_QR'] });
  t.deepEqual(example.rules.map((r) => r.name), ['reject-unknown-test-ae', 'drop-3d-lab-captures', 'ct-mr-to-pacs', 'chest-to-ai', 'ct-studies-to-3d-lab', 'priors-to-reading', 'archive-everything']);
  t.regex(readFileSync(join(repo, 'routing-rules/example.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/routing\/rules\.schema\.json\n/);
  t.regex(readFileSync(join(repo, 'routing-rules/examples/hospital.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/\.\.\/routing\/rules\.schema\.json\n/);
  // the commented-out rule in the default file is valid once its peers exist
  const text = readFileSync(join(repo, 'routing-rules/example.yaml'), 'utf8');
  const commented = text.split('\n').filter((l) => l.startsWith('#  ')).map((l) => l.slice(1));
  const uncommented = `rules:\n${commented.join('\n')}\n${text.slice(text.indexOf('\nrules:\n') + '\nrules:\n'.length)}`;
  t.deepEqual(parseRuleFile(uncommented, 'x.yaml', { peers: ['PACS', 'PACS_BACKUP'] }).map((r) => r.name), ['ct-to-pacs', 'keep-everything']);
});

test('listener names are checked when the configured listeners are given', (t) => {
  const text = rule('    when:\n      - listener: mian\n      - listener: { in: [main, tls2] }\n      - listener: "t*"\n    then: {}\n');
  const opts = { ...PEERS, listeners: ['main', 'tls'] };
  t.is(problemAt(t, text, 'rules[0].when[0].listener', 4, 'mian', opts).message, "unknown listener 'mian' (configured: main, tls); did you mean 'main'?");
  t.is(problemAt(t, text, 'rules[0].when[1].listener.in[1]', 5, 'tls2', opts).message, "unknown listener 'tls2' (configured: main, tls); did you mean 'tls'?");
  t.is(errorOf(t, text, 'r.yaml', opts).problems.length, 2, 'wildcards are not checked');
  t.notThrows(() => parseRuleFile(text, 'r.yaml', PEERS), 'without listeners in the options, any name goes');
});

test('property: any input gives rules or a RulesError whose problems all have a line, never a crash', (t) => {
  const keys = ['all', 'any', 'not', 'callingAe', 'calledAe', 'listener', 'tlsSubject', 'sourceAddress', 'attribute', 'tag', 'creator',
    'equals', 'in', 'wildcard', 'regex', 'range', 'exists', 'from', 'to', 'peer', 'failover', 'status', 'comment'];
  const leaf = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.constantFrom('Modality', 'CT', '(0009,xx01)', '00100020', 'PACS', '0xA700', '[', '20240101', '10.0.0.0/8', 'ROUTER TEST'));
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('tree'), { maxLength: 3 }), fc.dictionary(fc.constantFrom(...keys), tie('tree'), { maxKeys: 4 })),
  }));
  const ruleArb = fc.record({
    name: fc.oneof(fc.constantFrom('a', 'b'), leaf),
    when: tree,
    then: fc.dictionary(fc.constantFrom('forward', 'modify', 'drop', 'reject', 'prefetch'), tree, { maxKeys: 3 }),
  }, { requiredKeys: [] });
  let accepted = 0;
  fc.assert(fc.property(fc.array(ruleArb, { maxLength: 3 }), (rules) => {
    const text = stringify({ rules });
    try {
      parseRuleFile(text, 'p.yaml', PEERS);
      accepted++;
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      if (err.problems.some((p) => p.line === undefined || p.message === '')) throw new Error(`unplaced problem:\n${err.message}\n${text}`);
    }
  }), { numRuns: 400 });
  t.pass(`${accepted} accepted`);
});

test('commitWhen: a rule may tighten storage commitment; an unknown value is refused with the allowed ones', (t) => {
  const set = parseRuleFile(rule('    commitWhen: committed-downstream\n    then: { forward: [PACS] }\n'), 'r.yaml', PEERS);
  t.is(set[0].commitWhen, 'committed-downstream');
  t.is(parseRuleFile(rule('    then: { forward: [PACS] }\n'), 'r.yaml', PEERS)[0].commitWhen, undefined);
  t.regex(problemAt(t, rule('    commitWhen: deliverd\n    then: {}\n'), 'rules[0].commitWhen', 3, 'deliverd').message, /must be one of 'stored', 'delivered', 'committed-downstream'/);
});
