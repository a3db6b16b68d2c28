// Attributes of a dcmjs naturalized dataset as rules see them: keyword <-> tag through the dcmjs
// dictionary, tag text parsing, private elements found through their creator (PS3.5 7.8.1), and
// values reduced to plain strings and numbers for matching.
import { data } from 'dcmjs';
import type { DictionaryEntry } from 'dcmjs';
import type { AttributeRef, Scalar } from './rule.types.ts';

const meta = data.DicomMetaDictionary;
const byTag = new Map<string, DictionaryEntry>();
for (const entry of Object.values(meta.nameMap)) byTag.set(meta.unpunctuateTag(entry.tag).toUpperCase(), entry);

// dcmjs writes "either" VRs in lower case: ox = OB or OW, xs = US or SS, up = UL (offset), lt = OW (LUT data).
const VR_ALIASES: Record<string, string> = { ox: 'OB', xs: 'US', up: 'UL', lt: 'OW' };
const vrOf = (e: DictionaryEntry): string | undefined => (e.vr === 'na' ? undefined : VR_ALIASES[e.vr] ?? e.vr);

/** Dictionary entry by keyword, e.g. 'Modality'; retired ones also without dcmjs's RETIRED_ prefix ('StudyComments'). */
export function keywordInfo(keyword: string): { keyword: string; tag: string; vr?: string; vm: string } | undefined {
  const name = Object.hasOwn(meta.nameMap, keyword) ? keyword : Object.hasOwn(meta.nameMap, `RETIRED_${keyword}`) ? `RETIRED_${keyword}` : undefined;
  const e = name === undefined ? undefined : meta.nameMap[name];
  return e ? { keyword: e.name, tag: meta.unpunctuateTag(e.tag).toUpperCase(), vr: vrOf(e), vm: e.vm } : undefined;
}

/** Dictionary entry by 8-hex tag. */
export function tagInfo(tag: string): { keyword: string; vr?: string; vm: string } | undefined {
  const e = byTag.get(tag.toUpperCase());
  return e ? { keyword: e.name, vr: vrOf(e), vm: e.vm } : undefined;
}

export function allKeywords(): Iterable<string> {
  return Object.keys(meta.nameMap);
}

export type ParsedTag =
  | { kind: 'tag'; tag: string }
  | { kind: 'block'; group: string; element: string } // (gggg,xxEE): private element relative to its creator's block
  | { kind: 'bad'; problem: string };

/** '(0010,0020)', '0010,0020' or '00100020'; private by creator: '(0009,xx01)'. */
export function parseTagText(text: string): ParsedTag {
  const m = /^\(?\s*([0-9A-Fa-f]{4})\s*,?\s*([0-9A-Fa-f]{4}|[xX]{2}[0-9A-Fa-f]{2})\s*\)?$/.exec(text.trim());
  if (!m) return { kind: 'bad', problem: "must be a tag such as '(0010,0020)' or '00100020' (a private element by creator: '(0009,xx01)')" };
  const group = m[1].toUpperCase();
  const element = m[2].toUpperCase();
  if (element.startsWith('XX')) {
    if (!isPrivateGroup(group)) return { kind: 'bad', problem: `(${group},xx..) addresses a private block, but group ${group} is not private (private groups are odd, 0009 to FFFD)` };
    return { kind: 'block', group, element: element.slice(2) };
  }
  return { kind: 'tag', tag: group + element };
}

export function isPrivateGroup(group: string): boolean {
  const g = Number.parseInt(group, 16);
  return g % 2 === 1 && g > 0x0008 && g < 0xffff;
}

/** (gggg,0010-00FF) in a private group: a Private Creator element. */
export function isPrivateCreatorTag(tag: string): boolean {
  const element = Number.parseInt(tag.slice(4), 16);
  return isPrivateGroup(tag.slice(0, 4)) && element >= 0x10 && element <= 0xff;
}

/** '(0010,0020)' */
export function punctuate(tag: string): string {
  return `(${tag.slice(0, 4)},${tag.slice(4)})`;
}

/** How an attribute is named in explanations: its keyword, else its tag; private ones with their creator. */
export function attributeLabel(ref: AttributeRef): string {
  if (ref.kind === 'private') return `(${ref.group},xx${ref.element}) [${ref.creator}]`;
  return ref.keyword ?? punctuate(ref.tag);
}

// ---- reading values ----

export type Found =
  | { state: 'absent'; why: string }
  | { state: 'present'; tag: string; values: Scalar[]; sequence?: number /* item count, for sequences */ };

/** The dataset key holding `tag`: its keyword when the dictionary knows it, else the 8-hex tag. */
function keyFor(dataset: Record<string, unknown>, tag: string): string | undefined {
  const info = tagInfo(tag);
  if (info && Object.hasOwn(dataset, info.keyword)) return info.keyword;
  if (Object.hasOwn(dataset, tag)) return tag;
  const lower = tag.toLowerCase();
  return Object.hasOwn(dataset, lower) ? lower : undefined;
}

/** The block (2 hex) that `creator` reserved in `group`, if any. */
export function creatorBlock(dataset: Record<string, unknown>, group: string, creator: string): string | undefined {
  for (let block = 0x10; block <= 0xff; block++) {
    const hex = block.toString(16).toUpperCase().padStart(2, '0');
    const key = keyFor(dataset, `${group}00${hex}`);
    if (key !== undefined && scalars(dataset[key]).some((v) => String(v) === creator)) return hex;
  }
  return undefined;
}

/** The 8-hex tag `ref` stands for in this dataset (a private element's actual tag depends on its creator's block). */
export function resolveTag(dataset: Record<string, unknown>, ref: AttributeRef): { tag: string } | { why: string } {
  if (ref.kind === 'tag') return { tag: ref.tag };
  const block = creatorBlock(dataset, ref.group, ref.creator);
  if (block === undefined) return { why: `no private block of creator '${ref.creator}' in group ${ref.group}` };
  return { tag: `${ref.group}${block}${ref.element}` };
}

/** The dataset key of `ref`, or undefined when the element is absent. */
export function datasetKey(dataset: Record<string, unknown>, ref: AttributeRef): string | undefined {
  const r = resolveTag(dataset, ref);
  return 'tag' in r ? keyFor(dataset, r.tag) : undefined;
}

export function find(dataset: Record<string, unknown>, ref: AttributeRef): Found {
  const r = resolveTag(dataset, ref);
  if (!('tag' in r)) return { state: 'absent', why: r.why };
  const key = keyFor(dataset, r.tag);
  if (key === undefined) return { state: 'absent', why: ref.kind === 'private' ? `absent (no ${punctuate(r.tag)})` : 'absent' };
  const value = dataset[key];
  if (isSequence(value)) return { state: 'present', tag: r.tag, values: [], sequence: value.length };
  return { state: 'present', tag: r.tag, values: scalars(value) };
}

function isSequence(v: unknown): v is unknown[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && !(x instanceof ArrayBuffer) && !isPersonName(x));
}

function isPersonName(v: unknown): v is { Alphabetic?: string; Ideographic?: string; Phonetic?: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => k === 'Alphabetic' || k === 'Ideographic' || k === 'Phonetic');
}

/** Padding that is not significant: leading/trailing spaces and trailing NULs (PS3.5 6.2). */
export function trimPadding(s: string): string {
  return s.replace(/^[ \0]+|[ \0]+$/g, '');
}

/**
 * A naturalized value as a list of non-empty strings and numbers: multi-valued attributes give
 * several, PN gives 'Alphabetic=Ideographic=Phonetic' (trailing empty groups dropped), raw bytes
 * (private elements of unknown VR) are read as Latin-1 text split at '\'.
 */
export function scalars(value: unknown): Scalar[] {
  const out: Scalar[] = [];
  const add = (v: unknown): void => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) {
      for (const x of v) add(x);
    } else if (typeof v === 'number') {
      if (!Number.isNaN(v)) out.push(v);
    } else if (typeof v === 'bigint') {
      out.push(Number(v));
    } else if (typeof v === 'string') {
      const s = trimPadding(v);
      if (s !== '') out.push(s);
    } else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      const bytes = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (const part of Buffer.from(bytes).toString('latin1').split('\\')) add(part);
    } else if (isPersonName(v)) {
      add(personNameText(v));
    }
  };
  add(value);
  return out;
}

export function personNameText(pn: { Alphabetic?: string; Ideographic?: string; Phonetic?: string }): string {
  const parts = [pn.Alphabetic, pn.Ideographic, pn.Phonetic].map((p) => (typeof p === 'string' ? trimPadding(p) : ''));
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('=');
}

/** Values as DICOM writes them in text: 'A\B'. */
export function valuesText(values: Scalar[]): string {
  return values.map(String).join('\\');
}

export const NUMERIC_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A value as a number, if it is one (numbers, or strings such as '42.5' and ' 1 '). */
export function asNumber(v: Scalar): number | undefined {
  if (typeof v === 'number') return v;
  const s = v.trim();
  return NUMERIC_TEXT.test(s) ? Number(s) : undefined;
}

/** VRs whose values are numbers (IS and DS are numbers written as text). */
export const NUMERIC_VRS = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'SV', 'UV']);
export const BINARY_NUMBER_VRS = new Set(['US', 'SS', 'UL', 'SL', 'FL', 'FD', 'SV', 'UV', 'AT']);
export const BULK_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);
