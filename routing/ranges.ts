// Range matching for dates (DA), times (TM), date-times (DT) and numbers. Dates and times are
// reduced to digit strings (YYYYMMDD, HHMMSSFFFFFF, YYYYMMDDHHMMSSFFFFFF) and a bound is compared
// at its own precision: from '2024' to '2024' is the whole of 2024, to '17' is up to 17:59:59.999999.
// DT time zone offsets (&ZZXX) are ignored: values are compared as written.
import { asNumber } from './attributes.ts';
import type { RangeKind, Scalar } from './rule.types.ts';

const FULL_DIGITS: Record<Exclude<RangeKind, 'number'>, number> = { date: 8, time: 12, datetime: 20 };

/** YYYY, YYYYMM or YYYYMMDD; undefined if not a date. */
function dateDigits(s: string): string | undefined {
  if (!/^\d{4}(\d{2}(\d{2})?)?$/.test(s)) return undefined;
  const month = s.length >= 6 ? Number(s.slice(4, 6)) : 1;
  const day = s.length === 8 ? Number(s.slice(6, 8)) : 1;
  if (month < 1 || month > 12) return undefined;
  const days = new Date(Date.UTC(Number(s.slice(0, 4)), month, 0)).getUTCDate();
  return day >= 1 && day <= days ? s : undefined;
}

/** HH, HHMM, HHMMSS, HHMMSS.F (1-6 fraction digits) as digits without the dot. */
function timeDigits(s: string): string | undefined {
  const m = /^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$/.exec(s);
  if (!m || (m[4] !== undefined && m[3] === undefined)) return undefined;
  if (Number(m[1]) > 23 || (m[2] !== undefined && Number(m[2]) > 59) || (m[3] !== undefined && Number(m[3]) > 60)) return undefined;
  return m[1] + (m[2] ?? '') + (m[3] ?? '') + (m[4] ?? '');
}

/** YYYY[MM[DD[HH[MM[SS[.F]]]]]], an optional &ZZXX offset dropped. */
function dateTimeDigits(s: string): string | undefined {
  const m = /^(\d{4,8})(\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?$/.exec(s);
  if (!m) return undefined;
  const date = m[1].length > 8 ? undefined : dateDigits(m[1]);
  if (date === undefined || (m[2] !== undefined && date.length < 8)) return undefined;
  if (m[2] === undefined) return date;
  const time = timeDigits(m[2]);
  return time === undefined ? undefined : date + time;
}

const NAMES: Record<RangeKind, string> = {
  date: 'a date YYYYMMDD (or YYYY, YYYYMM)',
  time: "a time HHMMSS (or HH, HHMM, HHMMSS.FFFFFF), in quotes: '080000'",
  datetime: 'a date-time YYYYMMDDHHMMSS (or a prefix of it, e.g. YYYYMMDD)',
  number: 'a number',
};

/** A range bound as the engine keeps it (digits for dates and times), or why it is not one. */
export function parseBound(kind: RangeKind, value: Scalar): { bound: Scalar } | { problem: string } {
  if (kind === 'number') {
    const n = asNumber(value);
    return n === undefined ? { problem: `must be ${NAMES.number}` } : { bound: n };
  }
  const text = String(value).trim();
  const digits = kind === 'date' ? dateDigits(text) : kind === 'time' ? timeDigits(text) : dateTimeDigits(text);
  if (digits !== undefined) return { bound: digits };
  const hint = kind === 'time' && typeof value === 'number' ? ' (YAML reads an unquoted 080000 as the number 80000)' : '';
  return { problem: `must be ${NAMES[kind]}${hint}` };
}

/** Which kind of range a pair of bounds is, when the attribute's VR does not say (private elements). */
export function guessKind(bounds: Scalar[]): RangeKind | undefined {
  if (bounds.every((b) => typeof b === 'number')) return 'number';
  if (bounds.every((b) => typeof b === 'string' && /^\d{8}$/.test(b.trim()) && dateDigits(b.trim()))) return 'date';
  if (bounds.every((b) => typeof b === 'string' && /^\d{6}(\.\d+)?$/.test(b.trim()) && timeDigits(b.trim()))) return 'time';
  if (bounds.every((b) => typeof b === 'string' && /^\d{14}(\.\d+)?$/.test(b.trim()) && dateTimeDigits(b.trim()))) return 'datetime';
  if (bounds.every((b) => asNumber(b) !== undefined && !/^\d{6,8}$/.test(String(b).trim()))) return 'number';
  return undefined;
}

/** from <= to, each at the precision both share. */
export function boundsOrdered(kind: RangeKind, from: Scalar, to: Scalar): boolean {
  if (kind === 'number') return (from as number) <= (to as number);
  const p = Math.min(String(from).length, String(to).length);
  return String(from).slice(0, p) <= String(to).slice(0, p);
}

/** A dataset value in the form bounds are kept in, at full precision; undefined if it is not of this kind. */
function normalizeValue(kind: RangeKind, v: Scalar): Scalar | undefined {
  if (kind === 'number') return asNumber(v);
  const text = String(v).trim();
  const digits = kind === 'date' ? dateDigits(text.replace(/\./g, '')) : kind === 'time' ? timeDigits(text.replace(/:/g, '')) : dateTimeDigits(text);
  if (digits === undefined) return undefined;
  return digits.padEnd(FULL_DIGITS[kind], '0');
}

/** Whether `v` lies within [from, to] (either may be absent); undefined when `v` is not a value of this kind. */
export function inRange(kind: RangeKind, v: Scalar, from: Scalar | undefined, to: Scalar | undefined): boolean | undefined {
  const value = normalizeValue(kind, v);
  if (value === undefined) return undefined;
  if (kind === 'number') return (from === undefined || (value as number) >= (from as number)) && (to === undefined || (value as number) <= (to as number));
  const cut = (b: Scalar) => (value as string).slice(0, String(b).length);
  return (from === undefined || cut(from) >= String(from)) && (to === undefined || cut(to) <= String(to));
}

export const RANGE_KIND_NAMES = NAMES;
