// Rule files against routing/rules.schema.json (ajv 8, draft-07), with ajv's errors turned into
// sentences. The schema's `allOf` blocks hold the shape constraints an editor should flag (one
// kind per condition, one operator, ...); the rule parser reports those same mistakes more
// precisely, so errors from inside an allOf are left to it. Unions (anyOf) are only ever between
// different JSON types, so the branch that applies is the one whose type the value has.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import schema from './rules.schema.json' with { type: 'json' };
import { got, instancePath, unknownField } from '../config/yaml-problems.ts';
import type { RawProblem, Seg } from '../config/yaml-problems.ts';

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

function definitionOf(s: SchemaObj): string | undefined {
  return Object.keys(definitions).find((k) => definitions[k] === s || s.$ref === `#/definitions/${k}`);
}

function resolve(s: SchemaObj): SchemaObj {
  const def = typeof s.$ref === 'string' ? definitionOf(s) : undefined;
  return def ? definitions[def] : s;
}

function describe(s: SchemaObj | undefined): string {
  if (!s) return 'nothing here';
  const def = definitionOf(s);
  if (def && EXPECTED[def]) return EXPECTED[def];
  if (def && definitions[def] !== s) return describe(definitions[def]);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(String).join(', ')}`;
  if (Array.isArray(s.anyOf)) return s.anyOf.map((b: SchemaObj) => describe(b)).join(' or ');
  const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
  return types.map((t) => {
    switch (t) {
      case 'integer': return s.minimum !== undefined && s.maximum !== undefined ? `an integer from ${s.minimum} to ${s.maximum}` : 'an integer';
      case 'number': return 'a number';
      case 'string': return s.pattern === '^(0[xX])?[0-9A-Fa-f]{4}$' ? 'a status of 4 hex digits' : s.minLength > 0 ? 'a non-empty text' : 'a text';
      case 'boolean': return 'true or false';
      case 'array': return s.minItems > 0 ? `a list of at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}` : 'a list';
      case 'object': return 'a map of fields';
      case 'null': return 'empty';
      default: return 'a valid value';
    }
  }).join(' or ');
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function fits(branch: SchemaObj, v: unknown): boolean {
  const s = resolve(branch);
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
      if (b.instancePath === e.instancePath && b.keyword === 'type' && b !== e && (fitting.length === 0 || !fitting.some((f) => resolve(f) === b.parentSchema || f === b.parentSchema))) dropped.add(b);
    }
    if (fitting.length > 0) dropped.add(e);
  }
  return errors.filter((e) => !dropped.has(e)).map((e) => schemaProblem(e, instancePath(e.instancePath, data)));
}

function schemaProblem(e: ErrorObject, path: Seg[]): RawProblem {
  const parent = e.parentSchema as SchemaObj;
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'additionalProperties':
      return unknownField(path, p.additionalProperty, Object.keys(parent.properties ?? {}));
    case 'required':
      return { path: [...path, p.missingProperty], target: 'value', message: `required field is missing (expected ${describe(parent.properties?.[p.missingProperty])})` };
    case 'minItems':
      return { path, target: 'value', message: `must list at least ${p.limit} item${p.limit === 1 ? '' : 's'} (got ${got(e.data)})` };
    case 'maxLength':
      return { path, target: 'value', keyword: e.keyword, message: `must be at most ${p.limit} characters (got ${got(e.data)}, ${String(e.data).length} characters)` };
    case 'minLength':
      return { path, target: 'value', keyword: e.keyword, message: `must not be empty (expected ${describe(parent)})` };
    default: {
      const message = `must be ${describe(parent)} (got ${got(e.data)})`;
      return { path, target: 'value', keyword: e.keyword, message: path.length === 0 ? `the file ${message}` : message };
    }
  }
}
