// Evaluating a rule set for one instance (semantics documented in routing/rules.schema.json):
// rules run in order; a matching rule adds its forwards (each carrying that rule's modifications)
// and stops evaluation unless it says continue; the first matching reject wins and stops
// evaluation; a matching drop forwards nothing at all. Every rule leaves a trace for `explain`.
import { formatStatus } from '../protocol/status.ts';
import { evaluateWhen } from './conditions.ts';
import { conditionText, triggerText } from './completion-conditions.ts';
import { charsetPlan, charsetPlanLines } from './charset-plan.ts';
import { applyModifications, modificationText } from './modifications.ts';
import type { Forward, Modification, PrefetchAction, RoutingDecision, RoutingInput, RuleSet, RuleTrace } from './rule.types.ts';

export function evaluate(ruleSet: RuleSet, input: RoutingInput): RoutingDecision {
  const trace: RuleTrace[] = [];
  const matchedRules: string[] = [];
  const forward: Forward[] = [];
  const modifications: Modification[] = [];
  const notes: string[] = [];
  const prefetch: (PrefetchAction & { rule: string })[] = [];
  let dropRule: string | undefined;
  let reject: { status: number; comment: string; rule: string } | undefined;
  let stop: string | undefined;
  for (const rule of ruleSet.rules) {
    const base = { rule: rule.name, file: rule.file, line: rule.line, priority: rule.priority };
    if (stop !== undefined) {
      trace.push({ ...base, matched: false, conditions: [], skipped: stop });
      continue;
    }
    const { ok, lines } = evaluateWhen(rule.when, input);
    trace.push({ ...base, matched: ok, conditions: lines });
    if (!ok) continue;
    matchedRules.push(rule.name);
    const then = rule.then;
    if (then.reject) {
      reject = { ...then.reject, rule: rule.name };
      stop = `'${rule.name}' rejected the instance`;
      continue;
    }
    if (then.drop && dropRule === undefined) dropRule = rule.name;
    // Prefetch is not forwarding: a drop does not cancel it (the instance is still stored).
    if (then.prefetch) prefetch.push({ ...then.prefetch, rule: rule.name });
    for (const target of then.forward) {
      const first = forward.find((f) => f.peer === target.peer);
      if (first) {
        notes.push(`rule '${rule.name}': forward to ${target.peer} ignored, rule '${first.rule}' already forwards there`);
        continue;
      }
      forward.push({ ...target, modifications: then.modify, rule: rule.name, ...(rule.completion ? { completion: rule.completion } : {}) });
    }
    modifications.push(...then.modify);
    if (!rule.continue) stop = `'${rule.name}' matched and does not continue`;
  }
  const unused = (why: string) => {
    if (forward.length > 0) notes.push(`${why}: forward to ${forward.map((f) => `${f.peer} (rule '${f.rule}')`).join(', ')} not used`);
  };
  if (reject) {
    unused(`rule '${reject.rule}' rejects the instance`);
    return { forward: [], modifications, drop: dropRule !== undefined, reject: { status: reject.status, comment: reject.comment }, matchedRules, trace, notes };
  }
  const withPrefetch = prefetch.length > 0 ? { prefetch } : {};
  if (dropRule !== undefined) {
    notes.unshift(`rule '${dropRule}' drops the instance: it is kept and recorded but forwarded nowhere`);
    unused(`drop wins over forward`);
    return { forward: [], modifications, drop: true, matchedRules, trace, notes, ...withPrefetch };
  }
  return { forward, modifications, drop: false, matchedRules, trace, notes, ...withPrefetch };
}

/**
 * The decision in words: one line per rule and per condition, then what would be sent where. With
 * the instance's dataset, also how the modified text will be written (character set, conversion).
 */
export function explainText(decision: RoutingDecision, dataset?: Record<string, unknown>): string {
  const out: string[] = ['Rules, in evaluation order:'];
  if (decision.trace.length === 0) out.push('  (no rules are loaded)');
  for (const t of decision.trace) {
    const where = `(${t.file}:${t.line}, priority ${t.priority})`;
    if (t.skipped !== undefined) {
      out.push(`– ${t.rule} ${where}: not evaluated, ${t.skipped}`);
      continue;
    }
    out.push(`${t.matched ? '✔' : '✘'} ${t.rule} ${where}: ${t.matched ? 'matched' : 'no match'}`);
    for (const c of t.conditions) out.push(`${'    '.repeat(c.depth + 1)}${c.ok ? '✔' : '✘'} ${c.text} (${c.why})`);
  }
  out.push('Decision:');
  if (decision.reject) {
    const rule = decision.matchedRules[decision.matchedRules.length - 1];
    out.push(`  reject: answer the C-STORE with ${formatStatus(decision.reject.status, 'storage')}, comment '${decision.reject.comment}' (rule '${rule}'); nothing is stored or forwarded`);
  } else if (decision.forward.length === 0 && !decision.drop) {
    out.push(decision.matchedRules.length === 0
      ? '  no rule matched: the instance is kept and recorded, and forwarded nowhere'
      : `  nothing to forward: the instance is kept and recorded (matched: ${decision.matchedRules.join(', ')})`);
  }
  for (const f of decision.forward) {
    const failover = f.failover ? ` (failover ${f.failover})` : '';
    const n = f.modifications.filter((m) => m.op !== 'charset').length;
    const mods = n === 0 ? 'unmodified' : `with ${n} modification${n === 1 ? '' : 's'}:`;
    out.push(`  forward to ${f.peer}${failover}, rule '${f.rule}', ${mods}`);
    for (const m of f.modifications) out.push(`      ${modificationText(m)}`);
    if (dataset !== undefined && n > 0) {
      const applied = applyModifications(dataset, f.modifications);
      for (const line of charsetPlanLines(charsetPlan(dataset, applied.changes, applied.charset))) out.push(`      → ${line}`);
    }
    if (f.completion) out.push(`      ${triggerText(f.completion.trigger)}${f.completion.whenComplete.length > 0 ? `, then only if ${f.completion.whenComplete.map(conditionText).join(' and ')}` : ''}`);
  }
  for (const p of decision.prefetch ?? []) {
    const select = [
      p.modalities ? `modalities ${p.modalities.join('/')}` : undefined,
      p.withinDays !== undefined ? `within ${p.withinDays} days` : undefined,
      p.description ? `description /${p.description}/` : undefined,
      p.bodyPart ? `body part /${p.bodyPart}/` : undefined,
      p.excludeTriggeringStudy ? 'not this study' : undefined,
      `newest ${p.max}`,
      p.skipIfDestinationHas ? `skipping priors ${p.skipIfDestinationHas} already holds` : undefined,
    ].filter(Boolean).join(', ');
    out.push(`  prefetch (if this study is new): priors of the patient from ${p.archive} to ${p.destination} (${select}), rule '${p.rule}'`);
  }
  for (const n of decision.notes) out.push(`  note: ${n}`);
  return out.join('\n');
}
