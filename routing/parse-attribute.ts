// Which attribute a condition or modification is about: `attribute: Keyword`, `tag: '(gggg,eeee)'`,
// or a private element `tag: '(gggg,xxEE)'` + `creator: 'NAME'` (PS3.5 7.8.1).
import { allKeywords, isPrivateCreatorTag, keywordInfo, parseTagText, punctuate, tagInfo } from './attributes.ts';
import { report } from './parse-context.ts';
import type { ParseContext } from './parse-context.ts';
import type { AttributeRef } from './rule.types.ts';
import { closest } from '../config/yaml-problems.ts';
import type { Seg } from '../config/yaml-problems.ts';

export type ParsedRef = { ref: AttributeRef; vr?: string; vm?: string };

/** The message for a keyword the dictionary does not know, with the closest one it does. */
export function unknownKeyword(keyword: string): string {
  const guess = closest(keyword, allKeywords());
  return `unknown attribute keyword '${keyword}'${guess ? ` (did you mean '${guess}'?)` : ' (see PS3.6 for keywords, or give the tag)'}`;
}

/** Groups that are not part of a dataset's attributes. */
function notInDataset(tag: string): string | undefined {
  const group = tag.slice(0, 4);
  if (group === '0000') return `${punctuate(tag)} is in the command set, not the dataset`;
  if (group === '0002') return `${punctuate(tag)} is in the file meta information, not the dataset`;
  if (group === 'FFFE') return `${punctuate(tag)} is an item delimiter, not an attribute`;
  if (/^(0001|0003|0005|0007|FFFF)$/.test(group)) return `group ${group} is not allowed in a dataset (PS3.5 7.1)`;
  return undefined;
}

function byTag(tag: string): ParsedRef {
  const info = tagInfo(tag);
  return { ref: { kind: 'tag', tag, ...(info ? { keyword: info.keyword, ...(info.vr ? { vr: info.vr } : {}) } : {}) }, vr: info?.vr, vm: info?.vm };
}

/** A keyword or a tag written as one string (copy's from/to, template placeholders); private-by-creator is not possible here. */
export function refFromName(name: string): ParsedRef | { problem: string } {
  const text = name.trim();
  if (/^[A-Za-z][A-Za-z0-9_]*$/.test(text)) {
    const info = keywordInfo(text);
    if (!info) return { problem: unknownKeyword(text) };
    return { ref: { kind: 'tag', tag: info.tag, keyword: info.keyword, ...(info.vr ? { vr: info.vr } : {}) }, vr: info.vr, vm: info.vm };
  }
  const parsed = parseTagText(text);
  if (parsed.kind === 'bad') return { problem: `'${text}' is neither an attribute keyword nor a tag such as '(0010,0020)'` };
  if (parsed.kind === 'block') return { problem: `'${text}' is a private element by creator, which only the attribute/tag + creator form can address` };
  const outside = notInDataset(parsed.tag);
  return outside ? { problem: outside } : byTag(parsed.tag);
}

/** Reads {attribute | tag [+ creator]} from a map; reports what is wrong at `path`. */
export function parseAttributeRef(obj: Record<string, unknown>, path: Seg[], ctx: ParseContext): ParsedRef | undefined {
  const { attribute, tag, creator } = obj;
  if (attribute !== undefined && tag !== undefined) {
    report(ctx, [...path, 'tag'], 'give either attribute or tag, not both', 'key');
    return undefined;
  }
  if (creator !== undefined && tag === undefined) {
    report(ctx, [...path, 'creator'], "creator goes with a private tag written relative to its block, e.g. tag: '(0009,xx01)'", 'key');
    return undefined;
  }
  if (typeof attribute === 'string') {
    const info = keywordInfo(attribute);
    if (!info) {
      report(ctx, [...path, 'attribute'], /^[A-Za-z][A-Za-z0-9_]*$/.test(attribute) ? unknownKeyword(attribute) : `must be an attribute keyword such as Modality (got '${attribute}'; a tag goes in tag:)`);
      return undefined;
    }
    return { ref: { kind: 'tag', tag: info.tag, keyword: info.keyword, ...(info.vr ? { vr: info.vr } : {}) }, vr: info.vr, vm: info.vm };
  }
  if (typeof tag !== 'string') return undefined; // missing or wrong type: the schema says so
  const parsed = parseTagText(tag);
  if (parsed.kind === 'bad') {
    report(ctx, [...path, 'tag'], `${parsed.problem} (got '${tag}')`);
    return undefined;
  }
  if (parsed.kind === 'block') {
    if (typeof creator !== 'string') {
      if (creator === undefined) report(ctx, [...path, 'tag'], `a private element written as (${parsed.group},xx${parsed.element}) needs its creator: add creator: 'CREATOR NAME'`);
      return undefined;
    }
    if (creator.trim() === '') {
      report(ctx, [...path, 'creator'], 'must be a Private Creator name (got an empty text)');
      return undefined;
    }
    return { ref: { kind: 'private', group: parsed.group, element: parsed.element, creator: creator.trim() } };
  }
  const outside = notInDataset(parsed.tag);
  if (outside) {
    report(ctx, [...path, 'tag'], outside);
    return undefined;
  }
  if (creator !== undefined) {
    const element = Number.parseInt(parsed.tag.slice(4), 16);
    const hint = element >= 0x1000 && element <= 0xffff && !isPrivateCreatorTag(parsed.tag)
      ? `: '(${parsed.tag.slice(0, 4)},xx${parsed.tag.slice(6)})'` : '';
    report(ctx, [...path, 'tag'], `with creator, write the element relative to its block as (gggg,xxEE)${hint} (got '${tag}')`);
    return undefined;
  }
  return byTag(parsed.tag);
}

/** Why an attribute cannot be the target of a modification, if it cannot. */
export function unmodifiable(ref: AttributeRef): string | undefined {
  if (ref.kind === 'private') return undefined;
  const name = ref.keyword ?? punctuate(ref.tag);
  if (ref.tag === '7FE00010') return 'Pixel Data cannot be modified';
  if (ref.tag === '00080005') return 'SpecificCharacterSet cannot be modified (it decides how every other text is encoded)';
  if (ref.tag.endsWith('0000')) return `${name} is a group length, which the writer computes`;
  if (isPrivateCreatorTag(ref.tag)) return `${name} is a Private Creator element: it reserves a block for other elements and cannot be modified on its own`;
  return undefined;
}
