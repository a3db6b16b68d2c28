// Placing a problem in a YAML file and wording values in messages: shared by the configuration
// and the routing rules, so that every file an integrator edits reports mistakes the same way.
import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';

export type Seg = string | number;
/** A problem before it is placed in the file: the path of the value (or of its key) it is about. */
export type RawProblem = { path: Seg[]; message: string; target: 'value' | 'key'; keyword?: string };

/** rules[2].then.forward[0].peer */
export function formatPath(path: Seg[]): string {
  return path.map((s, i) => typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? (i === 0 ? s : `.${s}`) : `[${JSON.stringify(s)}]`).join('');
}

/** Offset of the YAML node at `path` (its key for target 'key'), or of the nearest ancestor that exists. */
export function locate(doc: Document, path: Seg[], target: 'value' | 'key'): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [i, seg] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      const keyStart = rangeStart(pair.key);
      if (i === path.length - 1 && target === 'key' && keyStart !== undefined) return keyStart;
      node = pair.value;
      // An empty value ("peer:") has no useful place of its own: point at its key.
      offset = (isScalar(node) && node.value === null ? undefined : rangeStart(node)) ?? keyStart ?? offset;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

/** The YAML node at `path`, if there is one (aliases resolved). */
export function nodeAt(doc: Document, path: Seg[]): unknown {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) node = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg))?.value;
    else if (isSeq(node) && typeof seg === 'number') node = node.items[seg];
    else return undefined;
  }
  return isAlias(node) ? node.resolve(doc) : node;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null)?.range;
  return range ? range[0] : undefined;
}

/** An ajv instance path ("/rules/0/name") as path segments, numbers for list indexes. */
export function instancePath(pointer: string, data: unknown): Seg[] {
  const path: Seg[] = [];
  let here: any = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key: Seg = Array.isArray(here) ? Number(seg) : seg;
    path.push(key);
    here = here?.[key];
  }
  return path;
}

/** A value as quoted in "(got ...)". */
export function got(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

/** The candidate closest to `word` if it is close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_ ]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const same = norm(c) === norm(word);
    // Cheap length filter before the edit distance: the keyword dictionary has ~5000 entries.
    if (!same && Math.abs(c.length - word.length) > Math.max(1, Math.floor(Math.max(word.length, c.length) / 3))) continue;
    const d = same ? 0 : editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(word.length, best.length) / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An unknown field, named at its key, with the likely intended one or the list of known ones. */
export function unknownField(path: Seg[], field: string, known: string[]): RawProblem {
  const guess = closest(field, known);
  const hint = guess ? `did you mean '${guess}'?` : `known fields: ${known.join(', ')}`;
  return { path: [...path, field], target: 'key', message: `unknown field '${field}' (${hint})` };
}
