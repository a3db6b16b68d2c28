// Loading routing-rules/*.yaml: each file is parsed (YAML with positions), validated against
// routing/rules.schema.json and then by the rule parser (peers, keywords, regexes, ranges,
// statuses...). Every problem names file:line:column and the field (DESIGN property 4); one bad file
// refuses the whole set, so the caller keeps the rules it had (hot reload).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { formatProblem } from '../config/config.ts';
import type { ConfigProblem } from '../config/config.ts';
import { parseActions } from './parse-actions.ts';
import { parseCompletion } from './parse-completion.ts';
import { parseWhen } from './parse-conditions.ts';
import type { ParseContext } from './parse-context.ts';
import type { Rule, RuleSet } from './rule.types.ts';
import { schemaProblems } from './schema-problems.ts';
import { formatPath, isObject, locate, nodeAt } from '../config/yaml-problems.ts';
import type { RawProblem } from '../config/yaml-problems.ts';

export type RulesProblem = ConfigProblem;
/** peers: configured peer names (forward targets must be among them); listeners: if given, listener conditions must name one. */
export type RuleFileOptions = { peers: string[]; listeners?: string[] };

export class RulesError extends Error {
  readonly problems: RulesProblem[];
  constructor(problems: RulesProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'RulesError';
    this.problems = problems;
  }
}

export const DEFAULT_PRIORITY = 100;

/** The rules of one file, in file order; throws RulesError naming every problem. */
export function parseRuleFile(text: string, file: string, opts: RuleFileOptions): Rule[] {
  const { rules, problems } = parseOne(text, file, opts);
  if (problems.length > 0) throw new RulesError(problems);
  return rules;
}

type Parsed = { rules: Rule[]; problems: RulesProblem[]; ruleAt: Map<Rule, { line: number; column: number }> };

function parseOne(text: string, file: string, opts: RuleFileOptions): Parsed {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const ruleAt = new Map<Rule, { line: number; column: number }>();
  if (doc.errors.length > 0) {
    return { rules: [], ruleAt, problems: doc.errors.map((e) => ({ file, ...at(e.pos[0]), path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` })) };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {}; // an empty file (or only comments) has no rules
  } catch (err) {
    return { rules: [], ruleAt, problems: [{ file, line: 1, column: 1, path: '', message: `YAML error: ${(err as Error).message}` }] };
  }
  const raw: RawProblem[] = schemaProblems(data);
  const ctx: ParseContext = {
    problems: [],
    peers: opts.peers,
    ...(opts.listeners ? { listeners: opts.listeners } : {}),
    sourceOf: (path) => {
      const node = nodeAt(doc, path);
      return isScalar(node) && typeof node.source === 'string' ? node.source : undefined;
    },
  };
  const rules: Rule[] = [];
  const names = new Map<string, number>();
  const list = isObject(data) && Array.isArray(data.rules) ? data.rules : [];
  list.forEach((r: unknown, i: number) => {
    if (!isObject(r)) return;
    const path = ['rules', i];
    const name = typeof r.name === 'string' ? r.name : undefined;
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) ctx.problems.push({ path: [...path, 'name'], target: 'value', message: `duplicate rule name '${name}' (also used by rules[${first}])` });
      else names.set(name, i);
    }
    const when = parseWhen(r.when, [...path, 'when'], ctx);
    const then = parseActions(r.then, [...path, 'then'], name ?? `rules[${i}]`, ctx);
    const completion = parseCompletion(r, path, ctx);
    if (name === undefined) return;
    const pos = at(locate(doc, path, 'value'));
    const rule: Rule = {
      name,
      ...(typeof r.description === 'string' ? { description: r.description } : {}),
      priority: typeof r.priority === 'number' ? r.priority : DEFAULT_PRIORITY,
      continue: r.continue === true,
      ...(typeof r.commitWhen === 'string' ? { commitWhen: r.commitWhen as Rule['commitWhen'] } : {}),
      when,
      // With problems the set is refused anyway; the rule is kept for the duplicate-name check across files.
      then: then ?? { forward: [], modify: [], drop: false },
      ...(completion ? { completion } : {}),
      file,
      line: pos.line,
    };
    ruleAt.set(rule, pos);
    rules.push(rule);
  });
  // Where the parser explains a value more precisely than a schema pattern, keep only its message.
  const parserPaths = new Set(ctx.problems.map((p) => formatPath(p.path)));
  const all = [...raw.filter((p) => !(p.keyword === 'pattern' && parserPaths.has(formatPath(p.path)))), ...ctx.problems];
  const problems = all.map((p) => ({ file, ...at(locate(doc, p.path, p.target)), path: formatPath(p.path), message: p.message }));
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { rules, problems, ruleAt };
}

/** Evaluation order: priority, then file (in the order given, i.e. by name), then position in the file. */
function ordered(rules: Rule[], files: string[]): Rule[] {
  const fileIndex = new Map(files.map((f, i) => [f, i]));
  return rules
    .map((rule, position) => ({ rule, position }))
    .sort((a, b) => a.rule.priority - b.rule.priority || (fileIndex.get(a.rule.file) ?? 0) - (fileIndex.get(b.rule.file) ?? 0) || a.position - b.position)
    .map((x) => x.rule);
}

/**
 * A rule set from the texts of several files (given in name order); rule names must be unique
 * across them. Throws RulesError listing the problems of every file.
 */
export function parseRuleFiles(sources: { file: string; text: string }[], opts: RuleFileOptions, now: Date = new Date()): RuleSet {
  const problems: RulesProblem[] = [];
  const rules: Rule[] = [];
  const firstByName = new Map<string, Rule>();
  for (const { file, text } of sources) {
    const parsed = parseOne(text, file, opts);
    problems.push(...parsed.problems);
    for (const rule of parsed.rules) {
      const first = firstByName.get(rule.name);
      if (first && first.file !== rule.file) {
        const pos = parsed.ruleAt.get(rule)!;
        problems.push({ file, line: pos.line, column: pos.column, path: '', message: `duplicate rule name '${rule.name}' (also defined at ${first.file}:${first.line})` });
      } else if (!first) {
        firstByName.set(rule.name, rule);
      }
      rules.push(rule);
    }
  }
  if (problems.length > 0) throw new RulesError(problems);
  const files = sources.map((s) => s.file);
  return { rules: ordered(rules, files), files, loadedAt: now.toISOString() };
}

const RULE_FILE = /\.ya?ml$/i;

/** Every *.yaml / *.yml file directly in `dir`, by name (code-unit order). */
export function ruleFilesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (err as Error).message;
    throw new RulesError([{ file: dir, path: '', message: `cannot read the rules folder: ${reason}` }]);
  }
  return names
    .filter((n) => RULE_FILE.test(n) && !n.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n))
    .filter((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false; // a dangling link or a file deleted meanwhile: nothing to load
      }
    });
}

/** Loads every rule file in `dir` (sorted by name) into one rule set; throws RulesError. */
export function loadRuleFiles(dir: string, opts: RuleFileOptions): RuleSet {
  const sources: { file: string; text: string }[] = [];
  const problems: RulesProblem[] = [];
  for (const file of ruleFilesIn(dir)) {
    try {
      sources.push({ file, text: readFileSync(file, 'utf8') });
    } catch (err) {
      problems.push({ file, path: '', message: `cannot read the rule file: ${(err as Error).message}` });
    }
  }
  if (problems.length > 0) throw new RulesError(problems);
  return parseRuleFiles(sources, opts);
}
