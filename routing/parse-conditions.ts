// `when` as written in a rule file -> Condition[], with every mistake reported at its place. The
// schema has already checked types and field names; this checks what it cannot (or says it better):
// one kind per condition, one operator, known keywords, compilable regexes, well-formed ranges.
import { aeTitleProblem, ipOrCidrProblem } from '../config/config.ts';
import { asNumber, BULK_VRS, NUMERIC_VRS } from './attributes.ts';
import { parseAttributeRef } from './parse-attribute.ts';
import { listWords, report } from './parse-context.ts';
import type { ParseContext } from './parse-context.ts';
import { boundsOrdered, guessKind, parseBound } from './ranges.ts';
import type { AssociationField, Condition, RangeKind, Scalar, TextMatcher, ValueMatcher } from './rule.types.ts';
import { closest, isObject } from '../config/yaml-problems.ts';
import type { Seg } from '../config/yaml-problems.ts';

const GROUPS = ['all', 'any', 'not'] as const;
const ASSOCIATION: AssociationField[] = ['callingAe', 'calledAe', 'listener', 'tlsSubject'];
const KINDS = [...GROUPS, ...ASSOCIATION, 'sourceAddress', 'attribute', 'tag'];
const OPERATORS = ['equals', 'in', 'wildcard', 'regex', 'range', 'exists'] as const;
const KNOWN_KEYS = new Set<string>([...KINDS, ...OPERATORS, 'creator']);

/** `when`: omitted = [], a list = all of them, a map = that one condition. */
export function parseWhen(when: unknown, path: Seg[], ctx: ParseContext): Condition[] {
  if (when === undefined || when === null) return [];
  if (Array.isArray(when)) return when.map((c, i) => parseCondition(c, [...path, i], ctx)).filter((c): c is Condition => c !== undefined);
  const c = parseCondition(when, path, ctx);
  return c ? [c] : [];
}

export function parseCondition(c: unknown, path: Seg[], ctx: ParseContext): Condition | undefined {
  if (!isObject(c)) return undefined; // the schema reports it
  const keys = Object.keys(c);
  // An unknown field (a misspelt operator, say) is reported by the schema; guessing further would only add noise.
  const unknown = keys.some((k) => !KNOWN_KEYS.has(k));
  const kinds = KINDS.filter((k) => k in c);
  const operators = OPERATORS.filter((k) => k in c);
  if (kinds.length === 0) {
    if (unknown) return undefined;
    if (operators.length > 0) report(ctx, [...path, operators[0]], `${operators[0]} tests an attribute: add attribute: Keyword (or tag: '(gggg,eeee)') to this condition`, 'key');
    else if (keys.length === 0) report(ctx, path, `empty condition: expected one of ${KINDS.join(', ')}`);
    else if ('creator' in c) report(ctx, [...path, 'creator'], "creator goes with a private tag written relative to its block, e.g. tag: '(0009,xx01)'", 'key');
    return undefined;
  }
  const attributeKinds = kinds.filter((k) => k === 'attribute' || k === 'tag');
  const otherKinds = kinds.filter((k) => k !== 'attribute' && k !== 'tag');
  if (otherKinds.length + Math.min(attributeKinds.length, 1) > 1) {
    const [first, second] = [...otherKinds, ...attributeKinds.slice(0, 1)];
    report(ctx, [...path, second], `one condition per map: this one has both ${first} and ${second}; write them as separate list items (all must hold) or inside any: [...]`, 'key');
    return undefined;
  }
  const kind = kinds[0];
  if (attributeKinds.length === 0) {
    const stray = operators[0] ?? ('creator' in c ? 'creator' : undefined);
    if (stray) {
      report(ctx, [...path, stray], `${stray} belongs to attribute conditions, not to ${kind}`, 'key');
      return undefined;
    }
  }
  switch (kind) {
    case 'all':
    case 'any': {
      const list = c[kind];
      if (!Array.isArray(list)) return undefined;
      const conditions = list.map((x, i) => parseCondition(x, [...path, kind, i], ctx));
      return conditions.every((x) => x !== undefined) && conditions.length > 0 ? { kind, conditions: conditions as Condition[] } : undefined;
    }
    case 'not': {
      const inner = Array.isArray(c.not) ? undefined : parseCondition(c.not, [...path, 'not'], ctx);
      return inner ? { kind: 'not', condition: inner } : undefined;
    }
    case 'sourceAddress': {
      const ranges = typeof c.sourceAddress === 'string' ? [c.sourceAddress] : Array.isArray(c.sourceAddress) ? c.sourceAddress : [];
      let ok = ranges.length > 0;
      ranges.forEach((r, i) => {
        if (typeof r !== 'string') return void (ok = false);
        const why = ipOrCidrProblem(r.trim());
        if (why) {
          ok = false;
          report(ctx, typeof c.sourceAddress === 'string' ? [...path, 'sourceAddress'] : [...path, 'sourceAddress', i], `${why} (got '${r}')`);
        }
      });
      return ok ? { kind: 'sourceAddress', ranges: (ranges as string[]).map((r) => r.trim()) } : undefined;
    }
    case 'attribute':
    case 'tag':
      return parseAttributeCondition(c, path, ctx);
    default: {
      const field = kind as AssociationField;
      const match = parseTextMatch(c[field], [...path, field], ctx, field === 'callingAe' || field === 'calledAe');
      if (match && field === 'listener' && !knownListeners(match, [...path, field], ctx)) return undefined;
      return match ? { kind: 'association', field, match } : undefined;
    }
  }
}

/** 'VALUE' (DICOM wildcards allowed), {in: [...]} or {regex: '...'}. */
function parseTextMatch(v: unknown, path: Seg[], ctx: ParseContext, aeTitle: boolean): TextMatcher | undefined {
  const checkAe = (value: string, at: Seg[]): boolean => {
    const why = aeTitle ? aeTitleProblem(value) : undefined;
    if (why) report(ctx, at, `${why} (got '${value}')`);
    return !why;
  };
  if (typeof v === 'string') {
    const value = v.trim();
    if (/[*?]/.test(value)) return { op: 'wildcard', pattern: value };
    return checkAe(value, path) ? { op: 'equals', value } : undefined;
  }
  if (!isObject(v)) return undefined;
  const given = ['in', 'regex'].filter((k) => k in v);
  if (given.length !== 1) {
    if (given.length === 0 && Object.keys(v).length === 0) report(ctx, path, "expected a text, {in: [...]} or {regex: '...'} (got an empty map)");
    else if (given.length === 2) report(ctx, [...path, 'regex'], 'give either in or regex, not both', 'key');
    return undefined;
  }
  if (Array.isArray(v.in)) {
    const values = v.in.filter((x): x is string => typeof x === 'string').map((x) => x.trim());
    if (values.length !== v.in.length) return undefined;
    return values.every((x, i) => checkAe(x, [...path, 'in', i])) ? { op: 'in', values } : undefined;
  }
  if (typeof v.regex === 'string') return compiles(v.regex, [...path, 'regex'], ctx) ? { op: 'regex', pattern: v.regex } : undefined;
  return undefined;
}

/** Listener names given as equals / in must be configured ones (when the caller says which those are). */
function knownListeners(m: TextMatcher, path: Seg[], ctx: ParseContext): boolean {
  const known = ctx.listeners;
  if (!known || (m.op !== 'equals' && m.op !== 'in')) return true;
  const names = m.op === 'equals' ? [m.value as string] : (m.values as string[]);
  let ok = true;
  names.forEach((name, i) => {
    if (known.includes(name)) return;
    ok = false;
    const guess = closest(name, known);
    report(ctx, m.op === 'in' ? [...path, 'in', i] : path, `unknown listener '${name}' (configured: ${known.join(', ') || 'none'})${guess ? `; did you mean '${guess}'?` : ''}`);
  });
  return ok;
}

function compiles(pattern: string, path: Seg[], ctx: ParseContext): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch (err) {
    report(ctx, path, `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
    return false;
  }
}

function parseAttributeCondition(c: Record<string, unknown>, path: Seg[], ctx: ParseContext): Condition | undefined {
  const operators = OPERATORS.filter((k) => k in c);
  const parsed = parseAttributeRef(c, path, ctx);
  if (operators.length === 0 && Object.keys(c).some((k) => !KNOWN_KEYS.has(k))) return undefined;
  if (operators.length !== 1) {
    const where = operators.length === 0 ? path : [...path, operators[1]];
    const message = operators.length === 0
      ? `an attribute condition needs one operator: ${OPERATORS.join(', ')}`
      : `one operator per condition: this one has ${listWords(operators)}; write separate conditions (all must hold) or use any: [...]`;
    report(ctx, where, message, operators.length === 0 ? 'value' : 'key');
    return undefined;
  }
  if (!parsed) return undefined;
  const op = operators[0];
  const name = parsed.ref.kind === 'tag' ? parsed.ref.keyword ?? parsed.ref.tag : 'this private element';
  if (parsed.vr === 'SQ' && op !== 'exists') {
    report(ctx, [...path, op], `${name} is a sequence: only exists applies to sequences`, 'key');
    return undefined;
  }
  const match = parseValueMatcher(op, c[op], [...path, op], parsed.vr, ctx);
  return match ? { kind: 'attribute', attribute: parsed.ref, match } : undefined;
}

/** An empty value can never match: empty elements count as missing. */
function nonEmpty(v: Scalar, path: Seg[], ctx: ParseContext): boolean {
  if (typeof v === 'number' || v.replace(/^[ \0]+|[ \0]+$/g, '') !== '') return true;
  report(ctx, path, 'an empty value never matches (an empty element counts as missing): use exists: false');
  return false;
}

/** A configured value as it will be compared: text, or a number where the comparison is numeric. */
function comparable(v: Scalar, vr: string | undefined): Scalar {
  if (typeof v === 'number') return v;
  const n = vr !== undefined && NUMERIC_VRS.has(vr) ? asNumber(v) : undefined;
  return n ?? v.replace(/^[ \0]+|[ \0]+$/g, '');
}

function parseValueMatcher(op: typeof OPERATORS[number], v: unknown, path: Seg[], vr: string | undefined, ctx: ParseContext): ValueMatcher | undefined {
  switch (op) {
    case 'equals':
      if (typeof v !== 'string' && typeof v !== 'number') return undefined;
      return nonEmpty(v, path, ctx) ? { op, value: comparable(v, vr) } : undefined;
    case 'in':
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' || typeof x === 'number')) return undefined;
      return (v as Scalar[]).every((x, i) => nonEmpty(x, [...path, i], ctx)) ? { op, values: (v as Scalar[]).map((x) => comparable(x, vr)) } : undefined;
    case 'wildcard':
      return typeof v === 'string' ? { op, pattern: v.trim() } : undefined;
    case 'regex':
      return typeof v === 'string' && compiles(v, path, ctx) ? { op, pattern: v } : undefined;
    case 'exists':
      return typeof v === 'boolean' ? { op, value: v } : undefined;
    case 'range':
      return isObject(v) ? parseRange(v, path, vr, ctx) : undefined;
  }
}

const KIND_BY_VR: Record<string, RangeKind> = { DA: 'date', TM: 'time', DT: 'datetime' };

function parseRange(r: Record<string, unknown>, path: Seg[], vr: string | undefined, ctx: ParseContext): ValueMatcher | undefined {
  const given = (['from', 'to'] as const).filter((k) => r[k] !== undefined);
  if (given.length === 0) {
    if (Object.keys(r).length === 0) report(ctx, path, 'a range needs from, to or both');
    return undefined;
  }
  if (!given.every((k) => typeof r[k] === 'string' || typeof r[k] === 'number')) return undefined;
  if (vr !== undefined && (BULK_VRS.has(vr) || vr === 'AT')) {
    report(ctx, path, `range does not apply to binary data (VR ${vr})`);
    return undefined;
  }
  const raw = given.map((k) => r[k] as Scalar);
  const kind: RangeKind | undefined = vr !== undefined && KIND_BY_VR[vr] ? KIND_BY_VR[vr] : vr !== undefined && NUMERIC_VRS.has(vr) ? 'number' : guessKind(raw);
  if (kind === undefined) {
    report(ctx, path, `cannot tell what this range compares${vr ? ` (the attribute's VR is ${vr})` : ''}: write numbers unquoted, dates as YYYYMMDD, times as 'HHMMSS', date-times as YYYYMMDDHHMMSS`);
    return undefined;
  }
  const bounds: Partial<Record<'from' | 'to', Scalar>> = {};
  let ok = true;
  for (const k of given) {
    const b = parseBound(kind, r[k] as Scalar);
    if ('problem' in b) {
      report(ctx, [...path, k], `${b.problem} (got ${JSON.stringify(r[k])})`);
      ok = false;
    } else {
      bounds[k] = b.bound;
    }
  }
  if (!ok) return undefined;
  if (bounds.from !== undefined && bounds.to !== undefined && !boundsOrdered(kind, bounds.from, bounds.to)) {
    report(ctx, [...path, 'to'], `the range is empty: from (${r.from}) is after to (${r.to})`);
    return undefined;
  }
  return { op: 'range', kind, ...bounds };
}
