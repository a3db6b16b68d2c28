// A rule's `trigger` and `whenComplete` as written in a rule file -> Completion: defaults by `per`
// filled in, and what the schema cannot say refused with the field's position: requiredSeries on a
// per-series trigger, a hard limit shorter than the quiet time, min above max, whenComplete without
// a trigger, a trigger on a rule that forwards nothing. The schema has checked types and keys.
import { isObject } from '../config/yaml-problems.ts';
import type { Seg } from '../config/yaml-problems.ts';
import { COMPLETION_DEFAULTS } from './completion-conditions.ts';
import { report } from './parse-context.ts';
import type { ParseContext } from './parse-context.ts';
import type { Completion, CompletionCondition, CompletionTrigger, RequiredSeries } from './rule.types.ts';

const AFTER_FIRED = ['new-instances', 'resend-study', 'ignore'] as const;

/** `rule` is the raw rule object at `path` (['rules', i]). Undefined when the rule has no trigger or it is refused. */
export function parseCompletion(rule: Record<string, unknown>, path: Seg[], ctx: ParseContext): Completion | undefined {
  const hasTrigger = 'trigger' in rule && rule.trigger !== null && rule.trigger !== undefined;
  if (!hasTrigger) {
    if ('whenComplete' in rule) report(ctx, [...path, 'whenComplete'], 'whenComplete is checked when a series or study is complete: it needs a trigger (per: series or per: study) in the same rule', 'key');
    return undefined;
  }
  const before = ctx.problems.length;
  const then = isObject(rule.then) ? rule.then : {};
  if (!Array.isArray(then.forward) || then.forward.length === 0) {
    report(ctx, [...path, 'trigger'], "trigger holds this rule's forwards until the series or study is complete, but the rule has no forward", 'key');
  }
  const trigger = parseTrigger(rule.trigger, [...path, 'trigger'], ctx);
  const whenComplete = Array.isArray(rule.whenComplete) ? rule.whenComplete.map((c, i) => parseCondition(c, [...path, 'whenComplete', i], ctx)) : [];
  if (ctx.problems.length > before || !trigger) return undefined;
  return { trigger, whenComplete: whenComplete.filter((c): c is CompletionCondition => c !== undefined) };
}

function parseTrigger(t: unknown, path: Seg[], ctx: ParseContext): CompletionTrigger | undefined {
  if (!isObject(t) || (t.per !== 'series' && t.per !== 'study')) return undefined;
  const per = t.per;
  const defaults = COMPLETION_DEFAULTS[per];
  const quietSeconds = typeof t.quietSeconds === 'number' ? t.quietSeconds : defaults.quietSeconds;
  const maxWaitSeconds = typeof t.maxWaitSeconds === 'number' ? t.maxWaitSeconds : Math.max(defaults.maxWaitSeconds, quietSeconds);
  let ok = true;
  if (!(quietSeconds > 0)) {
    report(ctx, [...path, 'quietSeconds'], `must be more than 0 seconds (got ${quietSeconds})`);
    ok = false;
  }
  if (!(maxWaitSeconds > 0)) {
    report(ctx, [...path, 'maxWaitSeconds'], `must be more than 0 seconds (got ${maxWaitSeconds})`);
    ok = false;
  } else if (ok && maxWaitSeconds < quietSeconds) {
    report(ctx, [...path, 'maxWaitSeconds' in t ? 'maxWaitSeconds' : 'quietSeconds'], `the hard limit (maxWaitSeconds ${maxWaitSeconds}) must be at least the quiet time (quietSeconds ${quietSeconds})`);
    ok = false;
  }
  let requiredSeries: RequiredSeries[] | undefined;
  if ('requiredSeries' in t) {
    if (per === 'series') {
      report(ctx, [...path, 'requiredSeries'], 'requiredSeries lists the series a study waits for: it needs per: study (this trigger is per: series)', 'key');
      ok = false;
    } else if (Array.isArray(t.requiredSeries)) {
      requiredSeries = t.requiredSeries.filter(isObject).map((r) => ({
        ...(typeof r.modality === 'string' ? { modality: r.modality.trim() } : {}),
        ...(typeof r.seriesDescription === 'string' ? { seriesDescription: r.seriesDescription.trim() } : {}),
      }));
    }
  }
  const afterFired = AFTER_FIRED.find((a) => a === t.afterFired) ?? COMPLETION_DEFAULTS.afterFired;
  if (!ok) return undefined;
  return { per, quietSeconds, maxWaitSeconds, ...(requiredSeries ? { requiredSeries } : {}), afterFired };
}

function parseCondition(c: unknown, path: Seg[], ctx: ParseContext): CompletionCondition | undefined {
  if (!isObject(c)) return undefined;
  const keys = Object.keys(c);
  if (keys.length !== 1) return undefined; // the schema said so
  const key = keys[0];
  const body = c[key];
  if (!isObject(body)) return undefined;
  switch (key) {
    case 'modalities': {
      const list = (v: unknown) => (Array.isArray(v) ? v.map((m) => String(m).trim()) : undefined);
      const includes = list(body.includes);
      const excludes = list(body.excludes);
      const both = includes?.filter((m) => excludes?.includes(m)) ?? [];
      if (both.length > 0) {
        report(ctx, [...path, key], `${both.join(', ')} cannot be both included and excluded`);
        return undefined;
      }
      return { kind: 'modalities', ...(includes ? { includes } : {}), ...(excludes ? { excludes } : {}) };
    }
    case 'seriesCount':
    case 'instanceCount': {
      const min = typeof body.min === 'number' ? body.min : undefined;
      const max = typeof body.max === 'number' ? body.max : undefined;
      if (min !== undefined && max !== undefined && min > max) {
        report(ctx, [...path, key, 'min'], `min (${min}) is above max (${max}): no ${key === 'seriesCount' ? 'series' : 'instance'} count can match`);
        return undefined;
      }
      return { kind: key, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
    }
    case 'callingAe':
      return Array.isArray(body.in) ? { kind: 'callingAe', in: body.in.map((a) => String(a).trim()) } : undefined;
  }
  return undefined;
}
