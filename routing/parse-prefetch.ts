// `then.prefetch` as written in a rule file -> PrefetchAction: the archive (and the destination
// check's peer) are configured peers, the destination a valid AE title, the {{Keyword}}
// placeholders name attributes, the regular expressions compile; defaults filled in. The schema
// has already checked types and unknown keys.
import { aeTitleProblem } from '../config/config.ts';
import { isObject } from '../config/yaml-problems.ts';
import type { Seg } from '../config/yaml-problems.ts';
import { report } from './parse-context.ts';
import type { ParseContext } from './parse-context.ts';
import type { PrefetchAction } from './rule.types.ts';
import { hasPlaceholder } from './prefetch-select.ts';
import { parseTemplate } from './templates.ts';

export const PREFETCH_DEFAULTS = { queryModel: 'study-root', excludeTriggeringStudy: true, max: 3, dedupHours: 24 } as const;

const DAYS_PER: Record<string, number> = { d: 1, m: 30, y: 365 };

export function parsePrefetch(p: unknown, path: Seg[], ctx: ParseContext): PrefetchAction | undefined {
  if (!isObject(p) || typeof p.archive !== 'string' || typeof p.destination !== 'string') return undefined;
  let ok = true;
  const archive = p.archive.trim();
  if (!ctx.peers.includes(archive)) {
    const configured = ctx.peers.length === 0 ? 'no peers are configured' : `configured: ${ctx.peers.join(', ')}`;
    report(ctx, [...path, 'archive'], `unknown peer '${archive}' (${configured}); the archive must be a configured peer`);
    ok = false;
  }
  const destination = p.destination.trim();
  const aeWhy = aeTitleProblem(destination);
  if (aeWhy) {
    report(ctx, [...path, 'destination'], aeWhy);
    ok = false;
  }
  const check = p.skipIfDestinationHas;
  if (typeof check === 'string' && !ctx.peers.includes(check.trim())) {
    const configured = ctx.peers.length === 0 ? 'no peers are configured' : `configured: ${ctx.peers.join(', ')}`;
    report(ctx, [...path, 'skipIfDestinationHas'], `unknown peer '${check.trim()}' (${configured}); the destination check asks a configured peer: the destination's Query/Retrieve SCP`);
    ok = false;
  }
  // Placeholders must name attributes; the text around them is checked as it will be used.
  const placeholdersOk = (value: string, at: Seg[]): boolean => {
    if (!hasPlaceholder(value) && !value.includes('}}')) return true;
    const parsed = parseTemplate(value);
    if ('parts' in parsed) return true;
    for (const problem of parsed.problems) report(ctx, at, problem);
    ok = false;
    return false;
  };
  if (Array.isArray(p.modalities)) p.modalities.forEach((m, i) => typeof m === 'string' && placeholdersOk(m, [...path, 'modalities', i]));
  for (const key of ['description', 'bodyPart'] as const) {
    if (typeof p[key] !== 'string' || !placeholdersOk(p[key] as string, [...path, key])) continue;
    try {
      // A substituted value is regex-escaped, so any literal stands in for it here.
      new RegExp((p[key] as string).replace(/\{\{[^}]*\}\}/g, 'X'));
    } catch (err) {
      report(ctx, [...path, key], `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  const within = typeof p.within === 'string' ? /^(\d+)([dmy])$/.exec(p.within) : null;
  return {
    archive,
    destination,
    queryModel: p.queryModel === 'patient-root' ? 'patient-root' : PREFETCH_DEFAULTS.queryModel,
    ...(Array.isArray(p.modalities) ? { modalities: p.modalities.map((m) => String(m).trim()) } : {}),
    ...(within ? { withinDays: Number(within[1]) * DAYS_PER[within[2]] } : {}),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
    ...(typeof p.bodyPart === 'string' ? { bodyPart: p.bodyPart } : {}),
    excludeTriggeringStudy: typeof p.excludeTriggeringStudy === 'boolean' ? p.excludeTriggeringStudy : PREFETCH_DEFAULTS.excludeTriggeringStudy,
    max: typeof p.max === 'number' ? p.max : PREFETCH_DEFAULTS.max,
    dedupHours: typeof p.dedupHours === 'number' ? p.dedupHours : PREFETCH_DEFAULTS.dedupHours,
    ...(typeof check === 'string' ? { skipIfDestinationHas: check.trim() } : {}),
  };
}
