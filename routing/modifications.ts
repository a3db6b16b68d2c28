// Applying a rule's `modify` list to a dcmjs naturalized dataset: pure (the input is not touched;
// untouched values are shared with it), in order, each modification seeing the previous ones'
// result. `changes` is the net effect per top-level element, for the byte-level rewriter.
// Private elements are changed only where they exist: a new private element would need a VR and a
// block reservation the rules cannot express, so such a modification is skipped with a note.
import type { NaturalizedDataset } from 'dcmjs';
import { attributeLabel, datasetKey, find, resolveTag, tagInfo, valuesText } from './attributes.ts';
import { compileRegex, show } from './conditions.ts';
import type { AttributeRef, Change, CharsetPolicy, Modification, Scalar } from './rule.types.ts';
import { renderTemplate } from './templates.ts';
import { fitsNumericVr, naturalValue } from './vr-values.ts';

export type ModificationResult = {
  dataset: NaturalizedDataset;
  changes: Change[];
  /** modifications skipped, and why */
  notes: string[];
  /** What the rewriter does with a value the instance's character set cannot hold (the rule's `charset`). */
  charset: CharsetPolicy;
};

export function applyModifications(dataset: NaturalizedDataset, mods: Modification[]): ModificationResult {
  const out: Record<string, unknown> = { ...dataset };
  const touched: string[] = []; // 8-hex tags, in the order first changed
  const notes: string[] = [];
  let charset: CharsetPolicy = 'convert-to-utf8';
  const touch = (tag: string) => {
    if (!touched.includes(tag)) touched.push(tag);
  };

  /** Writes `values` to `ref`, or notes why it cannot. */
  const write = (m: Modification, ref: AttributeRef, values: Scalar[]): void => {
    const resolved = resolveTag(out, ref);
    if (!('tag' in resolved)) return void notes.push(`${modificationText(m)}: skipped, ${resolved.why}`);
    const existing = datasetKey(out, ref);
    const vr = ref.kind === 'tag' ? ref.vr : undefined;
    if (existing === undefined && vr === undefined) {
      return void notes.push(`${modificationText(m)}: skipped, ${attributeLabel(ref)} is absent and rules do not create private or unknown elements`);
    }
    if (!fitsNumericVr(vr, values)) {
      return void notes.push(`${modificationText(m)}: skipped, '${valuesText(values)}' is not a number (VR ${vr})`);
    }
    out[existing ?? (ref.kind === 'tag' && ref.keyword ? ref.keyword : resolved.tag)] = naturalValue(vr, values);
    touch(resolved.tag);
  };

  for (const m of mods) {
    switch (m.op) {
      case 'set': {
        const values: Scalar[] = 'template' in m ? renderTemplate(m.template, out).split('\\') : Array.isArray(m.value) ? m.value : [m.value];
        write(m, m.target, values);
        break;
      }
      case 'remove': {
        const key = datasetKey(out, m.target);
        const resolved = resolveTag(out, m.target);
        if (key !== undefined && 'tag' in resolved) {
          delete out[key];
          touch(resolved.tag);
        }
        break;
      }
      case 'copy': {
        const from = find(out, m.from);
        if (from.state === 'absent') notes.push(`${modificationText(m)}: skipped, ${attributeLabel(m.from)} is absent`);
        else write(m, m.to, from.values);
        break;
      }
      case 'charset':
        charset = m.policy;
        break;
      case 'replace': {
        const found = find(out, m.target);
        if (found.state === 'absent' || found.values.length === 0) break;
        const re = compileRegex(m.regex);
        const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
        write(m, m.target, found.values.map((v) => String(v).replace(global, m.with)));
        break;
      }
    }
  }

  const changes: Change[] = [];
  for (const tag of touched) {
    const ref: AttributeRef = { kind: 'tag', tag };
    const before = find(dataset, ref);
    const after = find(out, ref);
    const keyword = tagInfo(tag)?.keyword;
    const base = keyword ? { keyword, tag } : { tag };
    if (after.state === 'absent') {
      if (before.state === 'present') changes.push({ ...base, action: 'remove' });
    } else if (before.state === 'absent' || valuesText(before.values) !== valuesText(after.values)) {
      const v = after.values;
      changes.push({ ...base, action: 'set', value: v.length === 0 ? '' : v.length === 1 ? v[0] : v.map(String) });
    }
  }
  return { dataset: out as NaturalizedDataset, changes, notes, charset };
}

/** One modification in words: "set InstitutionName = 'General Hospital'". */
export function modificationText(m: Modification): string {
  switch (m.op) {
    case 'set':
      if ('template' in m) return `set ${attributeLabel(m.target)} = template '${m.template}'`;
      return `set ${attributeLabel(m.target)} = ${Array.isArray(m.value) ? `[${m.value.map(show).join(', ')}]` : typeof m.value === 'number' ? m.value : `'${m.value}'`}`;
    case 'remove': return `remove ${attributeLabel(m.target)}`;
    case 'copy': return `copy ${attributeLabel(m.from)} to ${attributeLabel(m.to)}`;
    case 'replace': return `replace /${m.regex}/ in ${attributeLabel(m.target)} with '${m.with}'`;
    case 'charset': return `charset: ${m.policy}`;
  }
}
