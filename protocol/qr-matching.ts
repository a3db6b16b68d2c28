// Query/Retrieve attribute matching (PS3.4 C.2.2.2) and the merging of matches from several
// sources by the level's unique key (C.2.2.1, C.4.1.2.1). Pure: values are decoded text (the query's
// Specific Character Set already applied), so a match compares characters, not bytes.
import type { QueryLevel } from './dataset-encode.ts';
import { keywordTag } from './dataset-encode.ts';
import { wildcardRegex } from './wildcard.ts';

/** The unique key of each level; at PATIENT level Patient ID is qualified by its issuer. */
export const UNIQUE_KEYS: Readonly<Record<QueryLevel, readonly string[]>> = {
  PATIENT: ['PatientID', 'IssuerOfPatientID'],
  STUDY: ['StudyInstanceUID'],
  SERIES: ['SeriesInstanceUID'],
  IMAGE: ['SOPInstanceUID'],
};

/** VRs whose matching value may be a range (C.2.2.2.5). */
const RANGE_VRS = new Set(['DA', 'TM', 'DT']);
/** VRs wildcards do not apply to (C.2.2.2.4: not to dates, times, UIDs, numbers). */
const NO_WILDCARD_VRS = new Set(['DA', 'TM', 'DT', 'UI', 'IS', 'DS', 'US', 'UL', 'SS', 'SL', 'FL', 'FD', 'AT']);

export type MatchingType = 'universal' | 'single' | 'wildcard' | 'range' | 'uid-list';

/** The VR of a keyword from the data dictionary ('UN' when it has none we know). */
export function vrOf(keyword: string): string {
  try {
    return keywordTag(keyword).vr;
  } catch {
    return 'UN';
  }
}

/** Which kind of matching a matching value asks for (C.2.2.2). */
export function matchingType(vr: string, query: string): MatchingType {
  const q = query.trim();
  if (q === '' || (q === '*' && !NO_WILDCARD_VRS.has(vr))) return 'universal';
  if (vr === 'UI' && q.includes('\\')) return 'uid-list';
  if (RANGE_VRS.has(vr) && q.includes('-')) return 'range';
  if (!NO_WILDCARD_VRS.has(vr) && /[*?]/.test(q)) return 'wildcard';
  return 'single';
}

/** Dates and times compare as text once the old separators are gone (DA YYYY.MM.DD, TM HH:MM:SS). */
const normalizeTemporal = (vr: string, v: string) => (vr === 'DA' ? v.trim().replace(/\./g, '') : vr === 'TM' ? v.trim().replace(/:/g, '') : v.trim());

/** A range bound compares only the precision it gives: TM 10 stands for 10:00:00 to 10:59:59.999999. */
function inRange(vr: string, query: string, value: string): boolean {
  const dash = query.indexOf('-');
  const lo = normalizeTemporal(vr, query.slice(0, dash));
  const hi = normalizeTemporal(vr, query.slice(dash + 1));
  const v = normalizeTemporal(vr, value);
  if (v === '') return false;
  if (lo && v.slice(0, lo.length) < lo) return false;
  if (hi && v.slice(0, hi.length) > hi) return false;
  return true;
}

/**
 * Does one attribute `value` (decoded text; multiple values separated by '\') match the matching
 * value `query`? An attribute without a value matches only universal matching. Single values are
 * compared exactly (trailing padding ignored); PN compares each value whole.
 */
export function matchValue(vr: string, query: string, value: string | undefined): boolean {
  const type = matchingType(vr, query);
  if (type === 'universal') return true;
  if (value === undefined || value.trim() === '') return false;
  const values = value.split('\\').map((v) => v.trim());
  const q = query.trim();
  switch (type) {
    case 'uid-list': {
      const wanted = new Set(q.split('\\').map((u) => u.trim()));
      return values.some((v) => wanted.has(v));
    }
    case 'range':
      return values.some((v) => inRange(vr, q, v));
    case 'wildcard':
      return values.some((v) => wildcardRegex(q).test(v));
    case 'single':
      return values.some((v) => v === q || (RANGE_VRS.has(vr) && normalizeTemporal(vr, v) === normalizeTemporal(vr, q)));
  }
}

export type EntityMatcher = {
  /** Does an entity (keyword → decoded text, for the attributes the source keeps) match the query's keys? */
  matches(entity: Readonly<Record<string, string | undefined>>): boolean;
  /** Keys with a non-universal value the source has no attribute for: not matched (FF01). */
  unsupported: string[];
};

/**
 * The query's keys made ready to match any number of entities: each key's VR and matching type are
 * worked out once, not per entity. `supported`: the keywords the source can match on; a non-universal
 * key outside it is not matched (treated as universal, and reported: PS3.4 C.4.1.1.4 FF01 "optional
 * keys not supported").
 */
export function entityMatcher(keys: Readonly<Record<string, string>>, supported: ReadonlySet<string>): EntityMatcher {
  const unsupported: string[] = [];
  const matched: [keyword: string, vr: string, query: string][] = [];
  for (const [keyword, query] of Object.entries(keys)) {
    if (NOT_MATCHED.has(keyword)) continue;
    const vr = vrOf(keyword);
    if (matchingType(vr, query) === 'universal') continue;
    if (!supported.has(keyword)) unsupported.push(keyword);
    else matched.push([keyword, vr, query]);
  }
  return { matches: (entity) => matched.every(([keyword, vr, query]) => matchValue(vr, query, entity[keyword])), unsupported };
}

/** Identifier keys that are not matching keys. */
const NOT_MATCHED = new Set(['QueryRetrieveLevel', 'SpecificCharacterSet', 'RetrieveAETitle', 'TimezoneOffsetFromUTC']);

/** Text of a naturalized (dcmjs) value: multiple values joined with '\', PN components with '='. */
export function textOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(textOf).join('\\');
  if (typeof v === 'object') {
    const pn = v as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
    if ('Alphabetic' in pn || 'Ideographic' in pn || 'Phonetic' in pn) {
      return [pn.Alphabetic ?? '', pn.Ideographic ?? '', pn.Phonetic ?? ''].join('=').replace(/=+$/, '');
    }
    return '';
  }
  return String(v);
}

/** The level's unique key of a match (naturalized dataset), or undefined when it has none. */
export function uniqueKeyOf(level: QueryLevel, dataset: Readonly<Record<string, unknown>>): string | undefined {
  const [key, ...qualifiers] = UNIQUE_KEYS[level];
  const value = textOf(dataset[key]).trim();
  if (value === '') return undefined;
  return [value, ...qualifiers.map((q) => textOf(dataset[q]).trim())].join('\u0000');
}

/**
 * Merges matches as they arrive from several sources: the first with a given unique key is kept,
 * later ones are dropped. A match without its unique key cannot be compared and is kept.
 */
export class MatchMerger {
  readonly #level: QueryLevel;
  readonly #seen = new Set<string>();
  duplicates = 0;
  constructor(level: QueryLevel) {
    this.#level = level;
  }
  admit(dataset: Readonly<Record<string, unknown>>): boolean {
    const key = uniqueKeyOf(this.#level, dataset);
    if (key === undefined) return true;
    if (this.#seen.has(key)) {
      this.duplicates++;
      return false;
    }
    this.#seen.add(key);
    return true;
  }
}

/** A query level from an identifier's QueryRetrieveLevel, or undefined when it is not one. */
export function queryLevelOf(value: unknown): QueryLevel | undefined {
  const v = textOf(value).trim().toUpperCase();
  return v === 'PATIENT' || v === 'STUDY' || v === 'SERIES' || v === 'IMAGE' ? v : undefined;
}
