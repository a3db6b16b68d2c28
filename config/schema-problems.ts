// The JSON Schema side of config validation: ajv with defaults, and its errors turned into
// messages an integrator reads ("must be an integer from 1 to 65535 (got 70000)", "did you mean
// 'requireClientCert'?"), each with the path of the value (or key) it is about.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import schema from './router.schema.json' with { type: 'json' };

import { closest, got, instancePath, unknownField } from './yaml-problems.ts';
import type { RawProblem, Seg } from './yaml-problems.ts';

type SchemaObj = { [k: string]: any };
const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true });
/** Validates and fills in defaults (useDefaults); errors in `validate.errors`. */
export const validate = ajv.compile(schema);
const definitions: SchemaObj = schema.definitions;

/** What a value matching a definition looks like, in words. */
export const EXPECTED: Record<string, string> = {
  aeTitle: 'an AE title (1 to 16 characters, no backslash or control characters, not all spaces)',
  uid: 'a UID (numbers separated by dots without leading zeros, e.g. 1.2.840.10008.1.2.1, at most 64 characters)',
  uidList: 'a non-empty list of UIDs',
  ipAddress: 'an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1 or ::)',
  ipOrCidr: 'an IPv4 or IPv6 address or CIDR range (e.g. 192.168.1.20, 10.0.0.0/8 or fd00::/8)',
  listener: 'a map of listener fields (name, aeTitles, port, ...)',
  peer: 'a map with aeTitle, host and port',
  pemFile: 'the path of a PEM file',
  listenerTls: 'a map with profile, key, cert, ca (and requireClientCert, handshakeSeconds, aeTitleBindings)',
  peerTls: 'a map with profile and ca (and key, cert, serverName)',
  aeTitleBinding: 'a map with aeTitle and subject and/or san',
};

function describe(s: SchemaObj | undefined): string {
  if (!s) return 'nothing here';
  const def = Object.keys(definitions).find((k) => definitions[k] === s || s.$ref === `#/definitions/${k}`);
  if (def && EXPECTED[def]) return EXPECTED[def];
  if (def && definitions[def] !== s) return describe(definitions[def]);
  if ('const' in s) return quote(s.const);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(quote).join(', ')}`;
  if (Array.isArray(s.anyOf)) return s.anyOf.map((b: SchemaObj) => describe(b)).join(' or ');
  switch (s.type) {
    case 'integer':
    case 'number': {
      const noun = s.type === 'integer' ? 'an integer' : 'a number';
      if (s.minimum !== undefined && s.maximum !== undefined) return `${noun} from ${s.minimum} to ${s.maximum}`;
      const bounds = [
        s.minimum !== undefined ? `at least ${s.minimum}` : s.exclusiveMinimum !== undefined ? `greater than ${s.exclusiveMinimum}` : '',
        s.maximum !== undefined ? `at most ${s.maximum}` : '',
      ].filter(Boolean);
      return bounds.length ? `${noun} ${bounds.join(' and ')}` : noun;
    }
    case 'string':
      if (s.minLength > 0 && s.maxLength) return `a string of ${s.minLength} to ${s.maxLength} characters`;
      return s.minLength > 0 ? 'a non-empty string' : 'a string';
    case 'boolean': return 'true or false';
    case 'array': return s.minItems > 0 ? `a list of at least ${plural(s.minItems, itemNoun(s))}` : 'a list';
    case 'object': return 'a map of fields';
    default: return 'a valid value';
  }
}

/** What one item of a list schema is called. */
function itemNoun(list: SchemaObj): string {
  const ref = String(list.items?.$ref ?? '').replace('#/definitions/', '');
  return ({ aeTitle: 'AE title', uid: 'UID', ipOrCidr: 'address', listener: 'listener', peer: 'peer', aeTitleBinding: 'binding' } as Record<string, string>)[ref] ?? 'item';
}

function quote(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}



export function schemaProblems(errors: ErrorObject[], data: unknown): RawProblem[] {
  const dropped = new Set<ErrorObject>();
  // anyOf ('default' or a list of UIDs): if the value has the shape of some branch, report that
  // branch's own errors; if it fits none, one message naming every allowed shape.
  errors.forEach((e, i) => {
    if (e.keyword !== 'anyOf') return;
    const within = errors.slice(0, i).filter((b) => !dropped.has(b) && (b.instancePath === e.instancePath || b.instancePath.startsWith(`${e.instancePath}/`)));
    const shape = within.filter((b) => b.instancePath === e.instancePath && ['type', 'const', 'enum'].includes(b.keyword));
    const fitsNoBranch = shape.length >= (e.schema as unknown[]).length;
    for (const b of fitsNoBranch ? within : shape) dropped.add(b);
    if (!fitsNoBranch) dropped.add(e);
  });
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
      return { path, target: 'value', message: `must list at least ${plural(p.limit, itemNoun(parent))} (got ${got(e.data)})` };
    case 'uniqueItems':
      return { path: [...path, Math.max(p.i, p.j)], target: 'value', message: `duplicate of item ${Math.min(p.i, p.j)} (${got((e.data as unknown[])[p.i])})` };
    case 'minLength':
    case 'maxLength':
      return { path, target: 'value', keyword: e.keyword, message: `must be ${describe(parent)} (got ${got(e.data)}, ${plural(String(e.data).length, 'character')})` };
    default: {
      const options = e.keyword === 'enum' ? parent.enum : e.keyword === 'anyOf' ? parent.anyOf.filter((b: SchemaObj) => 'const' in b).map((b: SchemaObj) => b.const) : [];
      const guess = typeof e.data === 'string' ? closest(e.data, options.filter((o: unknown) => typeof o === 'string')) : undefined;
      const message = `must be ${describe(parent)} (got ${got(e.data)}${guess ? `; did you mean '${guess}'?` : ''})`;
      return { path, target: 'value', keyword: e.keyword, message: path.length === 0 ? `the file ${message}` : message };
    }
  }
}


