// Evaluating a rule's `when`: every condition is evaluated (no short-circuit) so the trace can
// say, for each one, whether it held and why; conditions are cheap and have no side effects.
import { BlockList, isIP } from 'node:net';
import { attributeLabel, find, asNumber, valuesText } from './attributes.ts';
import { inRange } from './ranges.ts';
import { wildcardRegex } from '../protocol/wildcard.ts';
import type { Association, Condition, ConditionTrace, RoutingInput, Scalar, TextMatcher, ValueMatcher } from './rule.types.ts';

// Rules are plain data; compiled patterns are cached by their source (a rule set has few).
const regexCache = new Map<string, RegExp>();
const blockListCache = new Map<string, BlockList>();

export function compileRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern);
    regexCache.set(pattern, re);
  }
  return re;
}

/** Holds for an IPv4-mapped IPv6 address ('::ffff:10.1.2.3') when its IPv4 form is in range, as node:net's BlockList does. */
export function addressInRanges(address: string, ranges: string[]): boolean {
  const key = ranges.join(',');
  let list = blockListCache.get(key);
  if (!list) {
    list = new BlockList();
    for (const r of ranges) {
      const [ip, prefix] = r.split('/');
      const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) list.addAddress(ip, type);
      else list.addSubnet(ip, Number(prefix), type);
    }
    blockListCache.set(key, list);
  }
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** A value in a message: numbers and plain words bare, anything else quoted. */
export function show(v: Scalar): string {
  return typeof v === 'number' || /^[\w.^*?@:/+-]+$/.test(v) ? String(v) : `'${v}'`;
}

/** The test a matcher describes, after the attribute's name: "= CT", "in [CT, MR]", "matches /^A/". */
export function matcherText(m: ValueMatcher): string {
  switch (m.op) {
    case 'equals': return `= ${show(m.value)}`;
    case 'in': return `in [${m.values.map(show).join(', ')}]`;
    case 'wildcard': return `matches wildcard ${show(m.pattern)}`;
    case 'regex': return `matches /${m.pattern}/`;
    case 'range':
      if (m.from !== undefined && m.to !== undefined) return `in range ${m.from}..${m.to}`;
      return m.from !== undefined ? `>= ${m.from}` : `<= ${m.to}`;
    case 'exists': return m.value ? 'exists' : 'is missing';
  }
}

/** Whether one value satisfies a matcher (not for exists). */
function valueMatches(m: ValueMatcher, v: Scalar): boolean {
  switch (m.op) {
    case 'equals': return same(m.value, v);
    case 'in': return m.values.some((x) => same(x, v));
    case 'wildcard': return wildcardRegex(m.pattern).test(String(v));
    case 'regex': return compileRegex(m.pattern).test(String(v));
    case 'range': return inRange(m.kind, v, m.from, m.to) === true;
    case 'exists': return true;
  }
}

/** A configured number compares numerically; a configured string as text. */
function same(expected: Scalar, v: Scalar): boolean {
  if (typeof expected === 'number') return asNumber(v) === expected;
  return String(v) === expected;
}

function quoteValues(values: Scalar[]): string {
  const text = valuesText(values);
  return values.length === 1 && typeof values[0] === 'number' ? text : `'${text.length > 80 ? `${text.slice(0, 77)}...` : text}'`;
}

type Result = { ok: boolean; lines: ConditionTrace[] };

export function evaluateCondition(c: Condition, input: RoutingInput, depth = 0): Result {
  switch (c.kind) {
    case 'all':
    case 'any': {
      const children = c.conditions.map((x) => evaluateCondition(x, input, depth + 1));
      const held = children.filter((r) => r.ok).length;
      const n = children.length;
      const ok = c.kind === 'all' ? held === n : held > 0;
      const why = held === n ? (n === 1 ? 'it holds' : `all ${n} hold`) : held === 0 ? (n === 1 ? 'it does not hold' : 'none holds') : `${held} of ${n} hold`;
      return { ok, lines: [{ text: `${c.kind} of ${n}`, ok, why, depth }, ...children.flatMap((r) => r.lines)] };
    }
    case 'not': {
      const inner = evaluateCondition(c.condition, input, depth + 1);
      return { ok: !inner.ok, lines: [{ text: 'not', ok: !inner.ok, why: inner.ok ? 'the condition below holds' : 'the condition below does not hold', depth }, ...inner.lines] };
    }
    case 'association': return single(associationCondition(c.field, c.match, input.association), depth);
    case 'sourceAddress': {
      const address = input.association.remoteAddress;
      const ok = addressInRanges(address, c.ranges);
      return single({ text: `sourceAddress in ${c.ranges.join(', ')}`, ok, why: `was ${address}` }, depth);
    }
    case 'attribute': {
      const label = attributeLabel(c.attribute);
      const text = `${label} ${matcherText(c.match)}`;
      const found = find(input.dataset, c.attribute);
      const at = c.attribute.kind === 'private' && found.state === 'present' ? ` at (${found.tag.slice(0, 4)},${found.tag.slice(4)})` : '';
      if (found.state === 'absent') return single({ text, ok: c.match.op === 'exists' && !c.match.value, why: found.why }, depth);
      if (found.sequence !== undefined) {
        const ok = c.match.op === 'exists' && c.match.value;
        const only = c.match.op === 'exists' ? '' : '; only exists applies to sequences';
        return single({ text, ok, why: `a sequence of ${found.sequence} item${found.sequence === 1 ? '' : 's'}${only}` }, depth);
      }
      if (found.values.length === 0) return single({ text, ok: c.match.op === 'exists' && !c.match.value, why: `present but empty${at}` }, depth);
      const ok = c.match.op === 'exists' ? c.match.value : found.values.some((v) => valueMatches(c.match, v));
      let why = `was ${quoteValues(found.values)}${at}`;
      const m = c.match;
      if (m.op === 'range' && !ok && found.values.every((v) => inRange(m.kind, v, undefined, undefined) === undefined)) {
        why += `, not a ${m.kind === 'datetime' ? 'date-time' : m.kind}`;
      }
      return single({ text, ok, why }, depth);
    }
  }
}

function single(line: Omit<ConditionTrace, 'depth'>, depth: number): Result {
  return { ok: line.ok, lines: [{ ...line, depth }] };
}

const FIELD_VALUE: Record<string, (a: Association) => string | undefined> = {
  callingAe: (a) => a.callingAeTitle.trim(),
  calledAe: (a) => a.calledAeTitle.trim(),
  listener: (a) => a.listener,
  tlsSubject: (a) => a.tlsSubject,
};

function associationCondition(field: string, m: TextMatcher, a: Association): Omit<ConditionTrace, 'depth'> {
  const text = `${field} ${matcherText(m)}`;
  const value = FIELD_VALUE[field](a);
  if (value === undefined) return { text, ok: false, why: 'no TLS peer certificate (plain TCP association)' };
  return { text, ok: valueMatches(m, value), why: `was '${value}'` };
}

/** Evaluates a rule's `when` (all must hold; none = matches everything). */
export function evaluateWhen(when: Condition[], input: RoutingInput): Result {
  if (when.length === 0) return { ok: true, lines: [{ text: '(no conditions)', ok: true, why: 'matches everything', depth: 0 }] };
  const results = when.map((c) => evaluateCondition(c, input, 0));
  return { ok: results.every((r) => r.ok), lines: results.flatMap((r) => r.lines) };
}
