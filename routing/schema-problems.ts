// Rule files against routing/rules.schema.json (ajv 8, draft-07), with ajv's errors turned into
// sentences. The schema's `allOf` blocks hold the shape constraints an editor should flag (one
// kind per condition, one operator, ...); the rule parser reports those same mistakes more
// precisely, so errors from inside an allOf are left to it. Unions (anyOf) are only ever between
// different JSON types, so the branch that applies is the one whose type the value has.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import schema from './rules.schema.json' with { type: 'json' };
import { instancePath } from '../config/yaml-problems.ts';
import type { RawProblem } from '../config/yaml-problems.ts';
import { SchemaWords } from '../config/schema-words.ts';

type SchemaObj = { [k: string]: any };
const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true });
const validate = ajv.compile(schema);
const definitions: SchemaObj = schema.definitions;

/** What a value matching a definition looks like, in words. */
const EXPECTED: Record<string, string> = {
  rule: 'a rule: a map with name, when and then',
  ruleName: "a rule name: letters, digits, '.', '_' or '-', starting with a letter or digit, at most 64 characters",
  when: 'a condition or a list of conditions',
  conditionList: 'a list of at least 1 condition',
  condition: 'a condition, e.g. {attribute: Modality, equals: CT}',
  textMatch: "a text (DICOM wildcards * and ? allowed), {in: [...]} or {regex: '...'}",
  keyword: 'an attribute keyword such as Modality or PatientID',
  tag: "a tag such as '(0010,0020)' or '00100020' (a private element by creator: '(0009,xx01)')",
  scalar: 'a text or a number',
  range: 'a range {from, to}',
  then: 'a map of actions (forward, modify, drop, reject), or {} to keep only',
  forwardTarget: 'a peer name or {peer, failover}',
  peerName: 'a peer name',
  modification: 'one of {set: ...}, {remove: ...}, {copy: ...}, {replace: ...}',
  set: 'a map with attribute (or tag) and value (or template)',
  remove: 'a map with attribute (or tag)',
  copy: 'a map with from and to',
  replace: 'a map with attribute (or tag), regex and with',
  reject: "a map with status (e.g. 0xA700 or 'C001') and optional comment",
  ipOrCidr: 'an IPv4 or IPv6 address or CIDR range (e.g. 192.168.1.20, 10.0.0.0/8 or fd00::/8)',
};

const words = new SchemaWords({ definitions, expected: EXPECTED, patterns: { '^(0[xX])?[0-9A-Fa-f]{4}$': 'a status of 4 hex digits' } });

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function fits(branch: SchemaObj, v: unknown): boolean {
  const s = words.resolve(branch);
  if (s.type === undefined) return Array.isArray(s.anyOf) ? s.anyOf.some((b: SchemaObj) => fits(b, v)) : true;
  const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
  const t = jsonType(v);
  return types.some((x) => x === t || (x === 'integer' && typeof v === 'number' && Number.isInteger(v)));
}

/** Schema problems of one file's data (empty when it is valid). */
export function schemaProblems(data: unknown): RawProblem[] {
  if (validate(data)) return [];
  const errors = (validate.errors ?? []).filter((e) => !e.schemaPath.includes('/allOf/'));
  const dropped = new Set<ErrorObject>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf') continue;
    const branches = e.schema as SchemaObj[];
    const fitting = branches.filter((b) => fits(b, e.data));
    // Type mismatches of the branches that do not apply are noise; so is the anyOf itself when one applies.
    for (const b of errors) {
      if (b.instancePath === e.instancePath && b.keyword === 'type' && b !== e && (fitting.length === 0 || !fitting.some((f) => words.resolve(f) === b.parentSchema || f === b.parentSchema))) dropped.add(b);
    }
    if (fitting.length > 0) dropped.add(e);
  }
  return errors.filter((e) => !dropped.has(e)).map((e) => words.problem(e, instancePath(e.instancePath, data)));
}
