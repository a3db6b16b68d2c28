// Study- and series-level facts of a completion group (what arrived so far) and what rules ask of
// them: which required series are still missing, and whether the `whenComplete` conditions hold.
// Pure: used by the completion machine (machines/), the tracker (actors/) and `rules explain`.
import { wildcardRegex } from '../protocol/wildcard.ts';
import type { CompletionCondition, CompletionTrigger, RequiredSeries } from './rule.types.ts';

export type SeriesFact = { modality?: string; description?: string; instances: number };

/** What a group has seen: its series (by Series Instance UID), instance count, calling AE titles. */
export type GroupFacts = { series: Record<string, SeriesFact>; instances: number; callingAes: string[] };

/**
 * Defaults by `per`. Quiet times are the issue's. Hard limits: a series is acquired in minutes, so one
 * still growing after an hour is stuck or being resent (fire it); a study may gain reconstructions and
 * reports for a few hours after the scan, and a long examination (multi-phase, cardiac MR) takes up to
 * about two, so 4 h; what arrives later is handled by afterFired.
 */
export const COMPLETION_DEFAULTS = {
  series: { quietSeconds: 60, maxWaitSeconds: 3600 },
  study: { quietSeconds: 300, maxWaitSeconds: 14_400 },
  afterFired: 'new-instances',
} as const;

const clean = (v: string | undefined) => (v ?? '').replace(/[\s\0]+$/, '').trim();

export function seriesMatches(req: RequiredSeries, fact: SeriesFact): boolean {
  if (req.modality !== undefined && !wildcardRegex(req.modality).test(clean(fact.modality))) return false;
  if (req.seriesDescription !== undefined && !wildcardRegex(req.seriesDescription).test(clean(fact.description))) return false;
  return true;
}

/** The required series no series of the group matches yet (in the rule's order). */
export function missingRequired(required: RequiredSeries[] | undefined, series: Record<string, SeriesFact>): RequiredSeries[] {
  const facts = Object.values(series);
  return (required ?? []).filter((r) => !facts.some((f) => seriesMatches(r, f)));
}

export function requiredText(r: RequiredSeries): string {
  return [r.modality !== undefined ? `modality ${r.modality}` : '', r.seriesDescription !== undefined ? `description '${r.seriesDescription}'` : ''].filter(Boolean).join(', ');
}

export function modalitiesOf(facts: GroupFacts): string[] {
  return [...new Set(Object.values(facts.series).map((s) => clean(s.modality)).filter(Boolean))].sort();
}

const bounds = (n: number, min?: number, max?: number) => (min === undefined || n >= min) && (max === undefined || n <= max);
const boundsText = (min?: number, max?: number) => (min !== undefined && max !== undefined ? `${min}..${max}` : min !== undefined ? `>= ${min}` : `<= ${max}`);

export function conditionText(c: CompletionCondition): string {
  switch (c.kind) {
    case 'modalities':
      return [c.includes ? `modalities include one of ${c.includes.join('/')}` : '', c.excludes ? `modalities include none of ${c.excludes.join('/')}` : ''].filter(Boolean).join(' and ');
    case 'seriesCount':
      return `series count ${boundsText(c.min, c.max)}`;
    case 'instanceCount':
      return `instance count ${boundsText(c.min, c.max)}`;
    case 'callingAe':
      return `calling AE one of ${c.in.join('/')}`;
  }
}

/** Does one condition hold for these facts, and the fact it looked at. */
export function checkCondition(c: CompletionCondition, facts: GroupFacts): { ok: boolean; seen: string } {
  switch (c.kind) {
    case 'modalities': {
      const mods = modalitiesOf(facts);
      const ok = (!c.includes || c.includes.some((m) => mods.includes(m))) && (!c.excludes || !c.excludes.some((m) => mods.includes(m)));
      return { ok, seen: `modalities ${mods.join('/') || 'none'}` };
    }
    case 'seriesCount': {
      const n = Object.keys(facts.series).length;
      return { ok: bounds(n, c.min, c.max), seen: `${n} series` };
    }
    case 'instanceCount':
      return { ok: bounds(facts.instances, c.min, c.max), seen: `${facts.instances} instances` };
    case 'callingAe':
      return { ok: facts.callingAes.some((ae) => c.in.some((p) => wildcardRegex(p).test(clean(ae)))), seen: `calling AE ${facts.callingAes.join('/') || 'none'}` };
  }
}

/** All conditions hold? `failed` says, for each that does not, what it asked and what was seen. */
export function checkConditions(conditions: CompletionCondition[], facts: GroupFacts): { ok: boolean; failed: string[] } {
  const failed: string[] = [];
  for (const c of conditions) {
    const r = checkCondition(c, facts);
    if (!r.ok) failed.push(`${conditionText(c)} (seen: ${r.seen})`);
  }
  return { ok: failed.length === 0, failed };
}

/** For `rules explain`: "held for study completion (quiet 300 s, at most 14400 s, or when SR arrived)". */
export function triggerText(t: CompletionTrigger): string {
  const parts = [`quiet ${t.quietSeconds} s`];
  if (t.requiredSeries) parts.push(`or once ${t.requiredSeries.map(requiredText).join(' + ')} arrived`);
  parts.push(`at most ${t.maxWaitSeconds} s`);
  return `held for ${t.per} completion (${parts.join(', ')}; afterwards: ${t.afterFired})`;
}
