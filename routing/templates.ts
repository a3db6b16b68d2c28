// `set: { template: '{{PatientID}}^{{AccessionNumber}}' }`: text with {{Keyword}} or {{(gggg,eeee)}}
// placeholders, each replaced by that attribute's current values joined with '\' (absent = '').
import { find, valuesText } from './attributes.ts';
import { refFromName } from './parse-attribute.ts';
import type { AttributeRef } from './rule.types.ts';

export type TemplatePart = { text: string } | { placeholder: string; ref: AttributeRef };

const cache = new Map<string, TemplatePart[]>();

/** The parts of a template, or every problem in it (unknown keywords, unclosed braces). */
export function parseTemplate(template: string): { parts: TemplatePart[] } | { problems: string[] } {
  const parts: TemplatePart[] = [];
  const problems: string[] = [];
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      if (rest.includes('}}')) problems.push("'}}' without a matching '{{'");
      parts.push({ text: rest });
      break;
    }
    if (open > 0) {
      if (rest.slice(0, open).includes('}}')) problems.push("'}}' without a matching '{{'");
      parts.push({ text: rest.slice(0, open) });
    }
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) {
      problems.push(`unclosed '{{' in '${rest.slice(open)}'`);
      break;
    }
    const placeholder = rest.slice(open, close + 2);
    const name = rest.slice(open + 2, close).trim();
    if (name === '') problems.push('empty placeholder {{}}: put an attribute keyword or tag inside');
    else if (name.includes('{{')) problems.push(`unclosed '{{' before ${placeholder}`);
    else {
      const r = refFromName(name);
      if ('problem' in r) problems.push(`${r.problem} in ${placeholder}`);
      else parts.push({ placeholder, ref: r.ref });
    }
    rest = rest.slice(close + 2);
  }
  return problems.length > 0 ? { problems } : { parts };
}

/** The template's text for this dataset (the template must have parsed: the loader checked it). */
export function renderTemplate(template: string, dataset: Record<string, unknown>): string {
  let parts = cache.get(template);
  if (!parts) {
    const parsed = parseTemplate(template);
    if ('problems' in parsed) throw new Error(`invalid template '${template}': ${parsed.problems.join('; ')}`);
    parts = parsed.parts;
    cache.set(template, parts);
  }
  return parts.map((p) => {
    if ('text' in p) return p.text;
    const found = find(dataset, p.ref);
    return found.state === 'present' ? valuesText(found.values) : '';
  }).join('');
}
