// What the rewriter will do with the text a rule's modifications write, said in advance for
// `rules explain`: each non-ASCII value in the instance's own Specific Character Set when it can hold
// it, else the whole header converted to ISO_IR 192 or the forward refused (the rule's `charset`).
// The same check as protocol/dataset-rewrite.ts makes at forward time (protocol/charset.ts).
import { CHARSET_VRS, charsetName, encodeText, parseCharset } from '../protocol/charset.ts';
import { tagInfo } from './attributes.ts';
import type { Change, CharsetPolicy } from './rule.types.ts';

export type CharsetPlan = {
  /** The character set the values are written in: the instance's, or the one the modifications set. */
  charset: string;
  /** Non-ASCII values and whether the character set holds them. */
  values: { label: string; text: string; fits: boolean }[];
  /** What happens when one does not fit. */
  outcome: 'as-is' | 'convert-to-utf8' | 'refuse';
  /** Why a refusal: the rule's charset: refuse, or its own (0008,0005). */
  why?: string;
};

const SPECIFIC_CHARACTER_SET = '00080005';

export function charsetPlan(dataset: Record<string, unknown>, changes: Change[], policy: CharsetPolicy): CharsetPlan {
  const setScs = changes.find((c) => c.tag === SPECIFIC_CHARACTER_SET && c.action === 'set');
  const raw = setScs ? [setScs.value ?? ''].flat().map(String) : (dataset.SpecificCharacterSet as string | string[] | undefined);
  const charset = parseCharset(raw);
  const values: CharsetPlan['values'] = [];
  for (const c of changes) {
    if (c.action !== 'set' || c.value === undefined) continue;
    const vr = tagInfo(c.tag)?.vr;
    const text = [c.value].flat().map(String).join('\\');
    if (vr === undefined || !CHARSET_VRS.has(vr) || /^[\x00-\x7f]*$/.test(text)) continue;
    const fits = charset.unknown.length === 0 && encodeText(text, charset, vr) !== undefined;
    values.push({ label: c.keyword ?? c.tag, text, fits });
  }
  const misfit = values.some((v) => !v.fits);
  // A rule that sets (0008,0005) itself chose the character set: nothing is converted behind its back.
  const outcome = !misfit ? 'as-is' : setScs || policy === 'refuse' ? 'refuse' : 'convert-to-utf8';
  const why = outcome !== 'refuse' ? undefined : setScs ? 'the rule sets SpecificCharacterSet itself' : 'charset: refuse';
  return { charset: charsetName(charset), values, outcome, ...(why ? { why } : {}) };
}

/** The plan in words, one line each; none when the modifications write only ASCII. */
export function charsetPlanLines(plan: CharsetPlan): string[] {
  if (plan.values.length === 0) return [];
  const misfits = plan.values.filter((v) => !v.fits).map((v) => `${v.label} '${v.text}'`).join(', ');
  switch (plan.outcome) {
    case 'as-is':
      return plan.values.map((v) => `${v.label} will be written as '${v.text}' in ${plan.charset}`);
    case 'convert-to-utf8':
      return [`${misfits} cannot be written in ${plan.charset}: the dataset will be converted to ISO_IR 192 (UTF-8, every text value re-encoded)`];
    case 'refuse':
      return [`${misfits} cannot be written in ${plan.charset}: refused (${plan.why}); this forward will become a dead letter`];
  }
}
