// ajv's errors in sentences an integrator reads, for every file an integrator edits (the router
// configuration and the routing rules): what a value should look like ("an integer from 1 to 65535",
// "one of 'always', 'never'"), unknown fields with "did you mean", missing fields with what they
// expect. Each schema brings its own words for its definitions; the rest is said the same way.
import type { ErrorObject } from 'ajv';
import { closest, got, unknownField } from './yaml-problems.ts';
import type { RawProblem, Seg } from './yaml-problems.ts';

type SchemaObj = { [k: string]: any };

export type SchemaVocabulary = {
  /** The schema's `definitions`. */
  definitions: SchemaObj;
  /** What a value matching a definition looks like, in words, by definition name. */
  expected: Record<string, string>;
  /** What one item of a list of `$ref: #/definitions/NAME` is called, by NAME (default 'item'). */
  itemNouns?: Record<string, string>;
  /** Strings with these patterns, in words (e.g. a status of 4 hex digits). */
  patterns?: Record<string, string>;
};

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function quote(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

export class SchemaWords {
  readonly #v: SchemaVocabulary;

  constructor(vocabulary: SchemaVocabulary) {
    this.#v = vocabulary;
  }

  definitionOf(s: SchemaObj): string | undefined {
    const defs = this.#v.definitions;
    return Object.keys(defs).find((k) => defs[k] === s || s.$ref === `#/definitions/${k}`);
  }

  /** The schema a `$ref` points to (or the schema itself). */
  resolve(s: SchemaObj): SchemaObj {
    const def = typeof s.$ref === 'string' ? this.definitionOf(s) : undefined;
    return def ? this.#v.definitions[def] : s;
  }

  /** What a value matching `s` looks like, in words. */
  describe(s: SchemaObj | undefined): string {
    if (!s) return 'nothing here';
    const def = this.definitionOf(s);
    if (def && this.#v.expected[def]) return this.#v.expected[def];
    if (def && this.#v.definitions[def] !== s) return this.describe(this.#v.definitions[def]);
    if ('const' in s) return quote(s.const);
    if (Array.isArray(s.enum)) return `one of ${s.enum.map(quote).join(', ')}`;
    if (Array.isArray(s.anyOf)) return s.anyOf.map((b: SchemaObj) => this.describe(b)).join(' or ');
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    return types.map((t) => this.#describeType(t, s)).join(' or ');
  }

  #describeType(type: string, s: SchemaObj): string {
    switch (type) {
      case 'integer':
      case 'number': {
        const noun = type === 'integer' ? 'an integer' : 'a number';
        if (s.minimum !== undefined && s.maximum !== undefined) return `${noun} from ${s.minimum} to ${s.maximum}`;
        const bounds = [
          s.minimum !== undefined ? `at least ${s.minimum}` : s.exclusiveMinimum !== undefined ? `greater than ${s.exclusiveMinimum}` : '',
          s.maximum !== undefined ? `at most ${s.maximum}` : '',
        ].filter(Boolean);
        return bounds.length ? `${noun} ${bounds.join(' and ')}` : noun;
      }
      case 'string':
        if (typeof s.pattern === 'string' && this.#v.patterns?.[s.pattern]) return this.#v.patterns[s.pattern];
        if (s.minLength > 0 && s.maxLength) return `a text of ${s.minLength} to ${s.maxLength} characters`;
        return s.minLength > 0 ? 'a non-empty text' : 'a text';
      case 'boolean': return 'true or false';
      case 'array': return s.minItems > 0 ? `a list of at least ${plural(s.minItems, this.itemNoun(s))}` : 'a list';
      case 'object': return 'a map of fields';
      case 'null': return 'empty';
      default: return 'a valid value';
    }
  }

  /** What one item of a list schema is called. */
  itemNoun(list: SchemaObj): string {
    const ref = String(list.items?.$ref ?? '').replace('#/definitions/', '');
    return this.#v.itemNouns?.[ref] ?? 'item';
  }

  /** One ajv error as a problem at `path` (the value's path in the file). */
  problem(e: ErrorObject, path: Seg[]): RawProblem {
    const parent = e.parentSchema as SchemaObj;
    const p = e.params as Record<string, any>;
    switch (e.keyword) {
      case 'additionalProperties':
        return unknownField(path, p.additionalProperty, Object.keys(parent.properties ?? {}));
      case 'required':
        return { path: [...path, p.missingProperty], target: 'value', message: `required field is missing (expected ${this.describe(parent.properties?.[p.missingProperty])})` };
      case 'minItems':
        return { path, target: 'value', message: `must list at least ${plural(p.limit, this.itemNoun(parent))} (got ${got(e.data)})` };
      case 'uniqueItems':
        return { path: [...path, Math.max(p.i, p.j)], target: 'value', message: `duplicate of item ${Math.min(p.i, p.j)} (${got((e.data as unknown[])[p.i])})` };
      case 'maxLength':
        return { path, target: 'value', keyword: e.keyword, message: `must be at most ${plural(p.limit, 'character')} (got ${got(e.data)}, ${plural(String(e.data).length, 'character')})` };
      case 'minLength':
        return { path, target: 'value', keyword: e.keyword, message: p.limit === 1 ? `must not be empty (expected ${this.describe(parent)})` : `must be at least ${plural(p.limit, 'character')} (got ${got(e.data)})` };
      default: {
        const options = e.keyword === 'enum' ? parent.enum : e.keyword === 'anyOf' ? parent.anyOf.filter((b: SchemaObj) => 'const' in b).map((b: SchemaObj) => b.const) : [];
        const guess = typeof e.data === 'string' ? closest(e.data, options.filter((o: unknown) => typeof o === 'string')) : undefined;
        const message = `must be ${this.describe(parent)} (got ${got(e.data)}${guess ? `; did you mean '${guess}'?` : ''})`;
        return { path, target: 'value', keyword: e.keyword, message: path.length === 0 ? `the file ${message}` : message };
      }
    }
  }
}
