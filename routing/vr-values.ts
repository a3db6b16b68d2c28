// Values a rule writes into a dataset: checked against the attribute's VR at load (PS3.5 6.2) and
// converted to dcmjs naturalized form when applied (PN as {Alphabetic, Ideographic, Phonetic},
// IS/DS and binary numbers as numbers, single values unwrapped).
import { aeTitleProblem, uidProblem } from '../config/config.ts';
import { asNumber, BINARY_NUMBER_VRS, BULK_VRS, NUMERIC_VRS } from './attributes.ts';
import { parseBound } from './ranges.ts';
import type { Scalar } from './rule.types.ts';

// PS3.5 Table 6.2-1: maximum value lengths (PN: per component group).
const MAX_LENGTH: Record<string, number> = { AE: 16, AS: 4, CS: 16, DA: 8, DS: 16, DT: 26, IS: 12, LO: 64, LT: 10240, PN: 64, SH: 16, ST: 1024, TM: 14, UI: 64 };
const MULTILINE_VRS = new Set(['LT', 'ST', 'UT']);
const INTEGER_RANGE: Record<string, [number, number]> = {
  US: [0, 0xffff], SS: [-0x8000, 0x7fff], UL: [0, 0xffffffff], SL: [-0x80000000, 0x7fffffff], IS: [-0x80000000, 0x7fffffff],
  SV: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], UV: [0, Number.MAX_SAFE_INTEGER],
};

/** Why an attribute of this VR cannot be given a value by set/copy/replace, if it cannot. */
export function unsettableVr(vr: string | undefined): string | undefined {
  if (vr === 'SQ') return 'a sequence';
  if (vr !== undefined && BULK_VRS.has(vr)) return `binary data (VR ${vr})`;
  if (vr === 'AT') return 'a list of tags (VR AT)';
  return undefined;
}

/** Why `v` is not a valid value of VR `vr`; undefined when it is or when the VR is unknown (private elements). */
export function valueProblem(vr: string | undefined, v: Scalar): string | undefined {
  if (vr === undefined) return undefined;
  if (BINARY_NUMBER_VRS.has(vr) || vr === 'FL' || vr === 'FD') {
    const n = asNumber(v);
    if (n === undefined) return `must be a number (VR ${vr})`;
    const range = INTEGER_RANGE[vr];
    if (range && (!Number.isInteger(n) || n < range[0] || n > range[1])) return `must be an integer from ${range[0]} to ${range[1]} (VR ${vr})`;
    return undefined;
  }
  const s = String(v);
  if (s === '') return undefined; // an empty value is always allowed (Type 2)
  if (vr === 'IS') {
    const n = asNumber(v);
    const [lo, hi] = INTEGER_RANGE.IS;
    return n === undefined || !Number.isInteger(n) || n < lo || n > hi ? 'must be an integer (VR IS)' : undefined;
  }
  if (vr === 'DS') {
    if (asNumber(v) === undefined) return 'must be a decimal number (VR DS)';
    return s.length > 16 ? `must be at most 16 characters (VR DS), this one has ${s.length}` : undefined;
  }
  if (typeof v === 'number' && vr === 'TM') return "must be a time 'HHMMSS' in quotes (YAML reads 080000 as the number 80000)";
  if (vr === 'AE') return aeTitleProblem(s);
  if (vr === 'UI') return uidProblem(s);
  if (vr === 'DA' && !/^\d{8}$/.test(s)) return 'must be a date YYYYMMDD (VR DA)';
  if (vr === 'DA' || vr === 'TM' || vr === 'DT') {
    const bound = parseBound(vr === 'DA' ? 'date' : vr === 'TM' ? 'time' : 'datetime', s);
    if ('problem' in bound) return `${bound.problem} (VR ${vr})`;
  }
  if (vr === 'AS' && !/^\d{3}[DWMY]$/.test(s)) return 'must be an age such as 045Y, 006M, 003W or 010D (VR AS)';
  if (vr === 'CS' && !/^[A-Z0-9 _]*$/.test(s)) return 'must use only upper-case letters, digits, space and underscore (VR CS)';
  if (!MULTILINE_VRS.has(vr) && s.includes('\\')) return "must not contain '\\' (give several values as a list)";
  if (/[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]/.test(s) || (!MULTILINE_VRS.has(vr) && /[\t\n\r\f]/.test(s))) return `must not contain control characters (VR ${vr})`;
  if (vr === 'PN') {
    const groups = s.split('=');
    if (groups.length > 3) return "must have at most 3 component groups separated by '=' (VR PN)";
    const long = groups.find((g) => g.length > 64);
    if (long !== undefined) return `must have at most 64 characters per component group (VR PN), one has ${long.length}`;
    if (groups.some((g) => g.split('^').length > 5)) return "must have at most 5 components separated by '^' (VR PN)";
    return undefined;
  }
  const max = MAX_LENGTH[vr];
  return max !== undefined && s.length > max ? `must be at most ${max} characters (VR ${vr}), this one has ${s.length}` : undefined;
}

/** Values (already valid, or from a template) in naturalized form for an attribute of VR `vr`. */
export function naturalValue(vr: string | undefined, values: Scalar[]): unknown {
  if (vr === 'PN') {
    return values.filter((v) => String(v) !== '').map((v) => {
      const [Alphabetic, Ideographic, Phonetic] = String(v).split('=');
      return { Alphabetic, ...(Ideographic !== undefined ? { Ideographic } : {}), ...(Phonetic !== undefined ? { Phonetic } : {}) };
    });
  }
  const numeric = vr !== undefined && NUMERIC_VRS.has(vr);
  const out = values.map((v) => (numeric && String(v) !== '' ? asNumber(v) ?? v : v));
  if (out.length === 0) return '';
  return out.length === 1 ? out[0] : out;
}

/** Whether a value produced at run time (template, copy, replace) fits a numeric VR; other VRs take any text. */
export function fitsNumericVr(vr: string | undefined, values: Scalar[]): boolean {
  if (vr === undefined || !NUMERIC_VRS.has(vr)) return true;
  return values.every((v) => String(v) === '' || asNumber(v) !== undefined);
}
