import test from 'ava';
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parseRuleFile, RulesError } from '../../routing/rules-loader.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const schema = JSON.parse(readFileSync(join(repo, 'routing/rules.schema.json'), 'utf8'));
// What an editor does: the whole schema, shape constraints (allOf) included.
const editor = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(schema);
const PEERS = { peers: ['PACS', 'ARCHIVE'] };
const asData = (text: string) => parseDocument(text).toJS();

test('the schema is draft-07 and documents every field', (t) => {
  t.is(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  t.truthy(schema.description);
  const undocumented: string[] = [];
  const visit = (s: any, path: string) => {
    if (typeof s !== 'object' || s === null) return;
    for (const [name, field] of Object.entries<any>(s.properties ?? {})) {
      const documented = field.description || (field.$ref && schema.definitions[field.$ref.replace('#/definitions/', '')]?.description);
      if (!documented) undocumented.push(`${path}.${name}`);
    }
  };
  visit(schema, '');
  for (const [name, def] of Object.entries<any>(schema.definitions)) {
    visit(def, name);
    for (const branch of def.anyOf ?? []) visit(branch, `${name}(anyOf)`);
  }
  t.deepEqual(undocumented, []);
  t.is(schema.definitions.rule.properties.priority.default, 100);
  t.is(schema.definitions.rule.properties.continue.default, false);
  // the semantics an editor shows on hover
  for (const words of [/lower first/, /continue: true/, /drop: true/, /reject/, /no rule matches/i]) t.regex(schema.description, words);
});

test('the shipped examples are valid for an editor too', (t) => {
  for (const file of ['routing-rules/example.yaml', 'routing-rules/examples/hospital.yaml']) {
    t.true(editor(asData(readFileSync(join(repo, file), 'utf8'))), `${file}: ${JSON.stringify(editor.errors)}`);
  }
});

// Each text has exactly one mistake: the loader reports exactly one problem, and an editor using
// the schema flags the file as well where the mistake is one of shape (semantic checks such as
// peers, keywords and regexes are the loader's alone).
const ONE_MISTAKE: [string, string, boolean][] = [
  ['unknown field', '{ attribute: Modality, equlas: CT }', true],
  ['two operators', '{ attribute: Modality, equals: CT, in: [MR] }', true],
  ['no operator', '{ attribute: Modality }', true],
  ['operator without attribute', '{ equals: CT }', true],
  ['two kinds', '{ callingAe: A, calledAe: B }', true],
  ['operator on an association condition', '{ callingAe: A, equals: B }', true],
  ['empty condition', '{}', true],
  ['creator without tag', '{ attribute: Modality, creator: X, exists: true }', true],
  ['attribute and tag', "{ attribute: Modality, tag: '00080060', equals: CT }", true],
  ['in and regex', '{ callingAe: { in: [A], regex: B } }', true],
  ['empty text match', '{ callingAe: {} }', true],
  ['empty range', '{ attribute: StudyDate, range: {} }', true],
  ['bad tag', "{ tag: '(0008,006G)', exists: true }", true],
  ['wrong type', '{ attribute: Modality, exists: maybe }', true],
  ['unknown keyword', '{ attribute: Modalty, equals: CT }', false],
  ['bad regex', "{ attribute: Modality, regex: '(' }", false],
  ['reversed range', '{ attribute: StudyDate, range: { from: 20241231, to: 20240101 } }', false],
  ['private without creator', "{ tag: '(0009,xx01)', exists: true }", false],
  ['bad CIDR', '{ sourceAddress: 10.0.0.0/33 }', false],
];

for (const [name, condition, shape] of ONE_MISTAKE) {
  test(`one mistake, one message: ${name}`, (t) => {
    const text = `rules:\n  - name: r\n    when:\n      - ${condition}\n    then: {}\n`;
    const error = t.throws(() => parseRuleFile(text, 'r.yaml', PEERS), { instanceOf: RulesError }) as RulesError;
    t.is(error.problems.length, 1, error.message);
    t.is(error.problems[0].line, 4, error.message);
    if (shape) t.false(editor(asData(text)), 'the schema flags it in an editor');
  });
}

const MODIFY_MISTAKES: [string, string][] = [
  ['two operations in one item', '{ set: { attribute: StudyID, value: A }, remove: { attribute: StudyID } }'],
  ['set without value', '{ set: { attribute: StudyID } }'],
  ['set with value and template', '{ set: { attribute: StudyID, value: A, template: B } }'],
  ['remove without target', '{ remove: {} }'],
  ['empty modification', '{}'],
];

for (const [name, modification] of MODIFY_MISTAKES) {
  test(`one mistake, one message: modify: ${name}`, (t) => {
    const text = `rules:\n  - name: r\n    then:\n      forward: [PACS]\n      modify:\n        - ${modification}\n`;
    const error = t.throws(() => parseRuleFile(text, 'r.yaml', PEERS), { instanceOf: RulesError }) as RulesError;
    t.is(error.problems.length, 1, error.message);
    t.is(error.problems[0].line, 6, error.message);
    t.false(editor(asData(text)), 'the schema flags it in an editor');
  });
}

test('valid files the loader accepts are valid for an editor', (t) => {
  const text = `rules:
  - name: everything
    description: all the forms
    priority: -5
    continue: true
    when:
      - callingAe: CT*
      - calledAe: { in: [ROUTER] }
      - listener: { regex: '^main$' }
      - sourceAddress: [10.0.0.0/8]
      - not: { tlsSubject: { regex: 'CN=x' } }
      - any:
          - { attribute: Modality, equals: CT }
          - { attribute: SeriesNumber, in: [1, 2] }
          - { tag: '(0009,xx01)', creator: ROUTER TEST, wildcard: 'A*' }
          - { tag: '00100020', regex: '^P' }
          - { attribute: StudyDate, range: { from: 20240101, to: '20241231' } }
          - { attribute: PatientComments, exists: false }
    then:
      forward: [PACS, { peer: ARCHIVE }]
      modify:
        - set: { attribute: InstitutionName, value: X }
        - set: { attribute: ImageType, value: [DERIVED, SECONDARY] }
        - set: { tag: '(0009,xx01)', creator: ROUTER TEST, template: '{{PatientID}}' }
        - remove: { tag: '(0009,xx02)', creator: ROUTER TEST }
        - copy: { from: AccessionNumber, to: '(0020,0010)' }
        - replace: { attribute: PatientID, regex: '^0+', with: '' }
  - name: rejects
    when: { callingAe: BAD }
    then: { reject: { status: 0xC001, comment: no } }
  - name: drops
    then: { drop: true }
`;
  t.is(parseRuleFile(text, 'r.yaml', PEERS).length, 3);
  t.true(editor(asData(text)), JSON.stringify(editor.errors));
});
