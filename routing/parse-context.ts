// What the rule parser carries while it walks one file: the problems found so far (placed in the
// file afterwards), the configured peers, and a view of how YAML wrote a scalar.
import type { RawProblem, Seg } from '../config/yaml-problems.ts';

export type ParseContext = {
  problems: RawProblem[];
  peers: string[];
  /** Configured listener names, when the caller passes them: listener conditions must name one. */
  listeners?: string[];
  /** How the scalar at `path` is written in the YAML source (e.g. '0xA700' or '0122' for numbers). */
  sourceOf(path: Seg[]): string | undefined;
};

export function report(ctx: ParseContext, path: Seg[], message: string, target: 'value' | 'key' = 'value'): void {
  ctx.problems.push({ path, message, target });
}

/** "'a', 'b' and 'c'" */
export function listWords(words: string[]): string {
  const q = words.map((w) => `'${w}'`);
  return q.length <= 1 ? q.join('') : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}
