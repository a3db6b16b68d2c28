// then.prefetch's refinements as loaded from a rule file: skipIfDestinationHas must name a
// configured peer, {{Keyword}} placeholders must name attributes, regexes with placeholders must
// compile; each problem placed at file:line:column.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { parseRuleFile, RulesError } from '../../routing/rules-loader.ts';

const PEERS = { peers: ['ARCHIVE', 'WS_QR'] };
const rule = (prefetch: string) => `rules:\n  - name: r1\n    then:\n      prefetch: ${prefetch}\n`;

function problemAt(t: ExecutionContext, text: string, path: string, needle: string): string {
  const error = t.throws(() => parseRuleFile(text, 'r.yaml', PEERS), { instanceOf: RulesError }) as RulesError;
  const problem = error.problems.find((p) => p.path === path);
  if (!problem) return t.fail(`no problem at ${path}; got:\n${error.message}`) as never;
  const column = text.split('\n')[3].indexOf(needle) + 1;
  t.is(`${problem.file}:${problem.line}:${problem.column}`, `r.yaml:4:${column}`, error.message);
  t.true(error.message.split('\n').includes(`r.yaml:4:${column}: ${path}: ${problem.message}`), error.message);
  return problem.message;
}

test('skipIfDestinationHas: a configured peer, kept in the action', (t) => {
  const [r] = parseRuleFile(rule('{ archive: ARCHIVE, destination: WS, skipIfDestinationHas: WS_QR }'), 'r.yaml', PEERS);
  t.is(r.then.prefetch!.skipIfDestinationHas, 'WS_QR');
  t.false('skipIfDestinationHas' in parseRuleFile(rule('{ archive: ARCHIVE, destination: WS }'), 'r.yaml', PEERS)[0].then.prefetch!);
});

test('skipIfDestinationHas naming no configured peer is refused at load, at file:line:column', (t) => {
  t.regex(problemAt(t, rule('{ archive: ARCHIVE, destination: WS, skipIfDestinationHas: NOPE }'), 'rules[0].then.prefetch.skipIfDestinationHas', 'NOPE'),
    /^unknown peer 'NOPE' \(configured: ARCHIVE, WS_QR\); the destination check asks a configured peer/);
  t.truthy((t.throws(() => parseRuleFile(rule('{ archive: ARCHIVE, destination: WS, skipIfDestinationHas: 3 }'), 'r.yaml', PEERS)) as RulesError).problems
    .find((p) => p.path === 'rules[0].then.prefetch.skipIfDestinationHas'), 'the schema wants a peer name');
});

test('placeholders in modalities, description and bodyPart load as written', (t) => {
  const [r] = parseRuleFile(rule(`{ archive: ARCHIVE, destination: WS, modalities: ["{{Modality}}", MR], description: "{{StudyDescription}}", bodyPart: "^{{BodyPartExamined}}$" }`), 'r.yaml', PEERS);
  t.like(r.then.prefetch, { modalities: ['{{Modality}}', 'MR'], description: '{{StudyDescription}}', bodyPart: '^{{BodyPartExamined}}$' });
});

test('bad placeholders and regexes with placeholders are refused where they are', (t) => {
  t.regex(problemAt(t, rule('{ archive: ARCHIVE, destination: WS, modalities: ["{{NoSuchKeyword}}"] }'), 'rules[0].then.prefetch.modalities[0]', '"{{No'), /NoSuchKeyword/);
  t.regex(problemAt(t, rule('{ archive: ARCHIVE, destination: WS, bodyPart: "^{{BodyPartExamined$" }'), 'rules[0].then.prefetch.bodyPart', '"^{{'), /unclosed '\{\{'/);
  t.regex(problemAt(t, rule('{ archive: ARCHIVE, destination: WS, description: "({{StudyDescription}}" }'), 'rules[0].then.prefetch.description', '"({{'), /invalid regular expression/);
  t.truthy((t.throws(() => parseRuleFile(rule('{ archive: ARCHIVE, destination: WS, modalities: [ct] }'), 'r.yaml', PEERS)) as RulesError).problems
    .find((p) => p.path === 'rules[0].then.prefetch.modalities[0]'), 'a literal modality is still upper case');
});
