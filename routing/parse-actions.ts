// `then` as written in a rule file -> RuleActions: peers that exist, modifications whose targets and
// values fit, a reject status that is a failure, and no contradictory combinations.
import { statusCategory, formatStatus } from '../protocol/status.ts';
import { BINARY_NUMBER_VRS } from './attributes.ts';
import { parseAttributeRef, refFromName, unmodifiable } from './parse-attribute.ts';
import type { ParsedRef } from './parse-attribute.ts';
import { listWords, report } from './parse-context.ts';
import type { ParseContext } from './parse-context.ts';
import type { ForwardTarget, Modification, RuleActions, Scalar } from './rule.types.ts';
import { parsePrefetch } from './parse-prefetch.ts';
import { parseTemplate } from './templates.ts';
import { unsettableVr, valueProblem } from './vr-values.ts';
import { closest, isObject } from '../config/yaml-problems.ts';
import type { Seg } from '../config/yaml-problems.ts';

export function parseActions(then: unknown, path: Seg[], ruleName: string, ctx: ParseContext): RuleActions | undefined {
  if (!isObject(then)) return undefined;
  const before = ctx.problems.length;
  const forward = Array.isArray(then.forward) ? parseForward(then.forward, [...path, 'forward'], ctx) : [];
  const modify = Array.isArray(then.modify) ? then.modify.map((m, i) => parseModification(m, [...path, 'modify', i], ctx)) : [];
  const drop = then.drop === true;
  const prefetch = 'prefetch' in then ? parsePrefetch(then.prefetch, [...path, 'prefetch'], ctx) : undefined;
  if ('reject' in then) {
    const others = (['forward', 'modify', 'drop', 'prefetch'] as const).filter((k) => k in then && !(k === 'drop' && then.drop === false));
    if (others.length > 0) report(ctx, [...path, 'reject'], `reject answers the C-STORE with a failure and stores nothing: it cannot be combined with ${listWords(others)}`, 'key');
  } else if (drop && ('forward' in then || 'modify' in then)) {
    report(ctx, [...path, 'drop'], `drop: true forwards nowhere: remove ${'forward' in then ? 'forward' : 'modify'} from this rule (or the drop)`, 'key');
  } else if ('modify' in then && !('forward' in then)) {
    report(ctx, [...path, 'modify'], "modify changes what this rule forwards, but it has no forward (modifications apply to the rule's own forward targets)", 'key');
  }
  if ('charset' in then && !('modify' in then)) {
    report(ctx, [...path, 'charset'], "charset says what to do with a modified value the instance's character set cannot hold, but this rule has no modify", 'key');
  }
  const reject = 'reject' in then ? parseReject(then.reject, [...path, 'reject'], ruleName, ctx) : undefined;
  if (ctx.problems.length > before) return undefined;
  // The policy travels with the modifications it governs (see Modification 'charset').
  if (then.charset === 'refuse' || then.charset === 'convert-to-utf8') modify.push({ op: 'charset', policy: then.charset });
  return { forward, modify: modify as Modification[], drop, ...(reject ? { reject } : {}), ...(prefetch ? { prefetch } : {}) };
}

function parseForward(list: unknown[], path: Seg[], ctx: ParseContext): ForwardTarget[] {
  const out: ForwardTarget[] = [];
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    const at: Seg[] = [...path, i];
    const target = typeof item === 'string' ? { peer: item } : isObject(item) && typeof item.peer === 'string' ? { peer: item.peer, failover: item.failover } : undefined;
    if (!target) return;
    const peerPath = typeof item === 'string' ? at : [...at, 'peer'];
    const peer = target.peer.trim();
    let ok = knownPeer(peer, peerPath, ctx);
    const failover = typeof target.failover === 'string' ? target.failover.trim() : undefined;
    if (failover !== undefined) {
      ok = knownPeer(failover, [...at, 'failover'], ctx) && ok;
      if (failover === peer) {
        report(ctx, [...at, 'failover'], `the failover peer must differ from the peer ('${peer}')`);
        ok = false;
      }
    }
    const first = seen.get(peer);
    if (first !== undefined) {
      report(ctx, peerPath, `peer '${peer}' is already in this list (forward[${first}])`);
      ok = false;
    }
    seen.set(peer, i);
    if (ok) out.push(failover !== undefined ? { peer, failover } : { peer });
  });
  return out;
}

function knownPeer(name: string, path: Seg[], ctx: ParseContext): boolean {
  if (ctx.peers.includes(name)) return true;
  const configured = ctx.peers.length === 0 ? 'no peers are configured' : `configured: ${ctx.peers.join(', ')}`;
  const guess = closest(name, ctx.peers);
  report(ctx, path, `unknown peer '${name}' (${configured})${guess ? `; did you mean '${guess}'?` : ''}`);
  return false;
}

function parseModification(m: unknown, path: Seg[], ctx: ParseContext): Modification | undefined {
  if (!isObject(m)) return undefined;
  const ops = (['set', 'remove', 'copy', 'replace'] as const).filter((k) => k in m);
  if (ops.length !== 1) {
    if (ops.length > 1) report(ctx, [...path, ops[1]], `one modification per list item: this one has ${listWords(ops)}; give each its own '- ' item`, 'key');
    else if (Object.keys(m).length === 0) report(ctx, path, 'empty modification: expected one of set, remove, copy, replace');
    return undefined;
  }
  const op = ops[0];
  const body = m[op];
  const at: Seg[] = [...path, op];
  if (!isObject(body)) return undefined;
  if (op === 'copy') return parseCopy(body, at, ctx);
  const target = targetOf(body, at, ctx, op);
  if (!target) return undefined;
  switch (op) {
    case 'remove':
      return { op, target: target.ref };
    case 'replace': {
      if (target.vr !== undefined && BINARY_NUMBER_VRS.has(target.vr)) {
        report(ctx, at, `replace works on text; ${target.ref.kind === 'tag' ? target.ref.keyword ?? target.ref.tag : 'this element'} is a binary number (VR ${target.vr})`);
        return undefined;
      }
      if (typeof body.regex !== 'string' || typeof body.with !== 'string') return undefined;
      try {
        new RegExp(body.regex, 'g');
      } catch (err) {
        report(ctx, [...at, 'regex'], `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
        return undefined;
      }
      return { op, target: target.ref, regex: body.regex, with: body.with };
    }
    case 'set':
      return parseSet(body, at, target, ctx);
  }
}

/** The attribute a set/remove/replace changes, refused if it is not something a rule may change. */
function targetOf(body: Record<string, unknown>, path: Seg[], ctx: ParseContext, op: 'set' | 'remove' | 'replace'): ParsedRef | undefined {
  if (!('attribute' in body) && !('tag' in body)) {
    report(ctx, path, `${op} needs the attribute to change: attribute: Keyword or tag: '(gggg,eeee)'`);
    return undefined;
  }
  const target = parseAttributeRef(body, path, ctx);
  if (!target) return undefined;
  const at: Seg[] = [...path, 'attribute' in body ? 'attribute' : 'tag'];
  const why = unmodifiable(target.ref);
  const vrWhy = op === 'remove' ? undefined : unsettableVr(target.vr);
  if (why) report(ctx, at, why);
  else if (vrWhy) report(ctx, at, `${target.ref.kind === 'tag' ? target.ref.keyword ?? target.ref.tag : 'this element'} is ${vrWhy}: only remove applies`);
  return why || vrWhy ? undefined : target;
}

function parseSet(body: Record<string, unknown>, path: Seg[], target: ParsedRef, ctx: ParseContext): Modification | undefined {
  const hasValue = 'value' in body;
  const hasTemplate = 'template' in body;
  if (hasValue === hasTemplate) {
    report(ctx, hasValue ? [...path, 'template'] : path, hasValue ? 'give either value or template, not both' : 'set needs value (a fixed value) or template', hasValue ? 'key' : 'value');
    return undefined;
  }
  if (hasTemplate) {
    if (typeof body.template !== 'string') return undefined;
    const parsed = parseTemplate(body.template);
    if ('problems' in parsed) {
      for (const p of parsed.problems) report(ctx, [...path, 'template'], p);
      return undefined;
    }
    return { op: 'set', target: target.ref, template: body.template };
  }
  const v = body.value;
  const list = Array.isArray(v);
  const values = (list ? v : [v]) as unknown[];
  if (!values.every((x) => typeof x === 'string' || typeof x === 'number')) return undefined;
  if (list && target.vm === '1' && values.length > 1) {
    report(ctx, [...path, 'value'], `${target.ref.kind === 'tag' ? target.ref.keyword ?? target.ref.tag : 'this element'} takes a single value (VM 1), got ${values.length}`);
    return undefined;
  }
  let ok = true;
  values.forEach((x, i) => {
    const why = valueProblem(target.vr, x as Scalar);
    if (why) {
      report(ctx, list ? [...path, 'value', i] : [...path, 'value'], `${why} (got ${JSON.stringify(x)})`);
      ok = false;
    }
  });
  if (!ok) return undefined;
  return { op: 'set', target: target.ref, value: list ? values.map(String) : (v as string | number) };
}

function parseCopy(body: Record<string, unknown>, path: Seg[], ctx: ParseContext): Modification | undefined {
  const ends: ParsedRef[] = [];
  for (const key of ['from', 'to'] as const) {
    const text = body[key];
    if (typeof text !== 'string') return undefined;
    const r = refFromName(text);
    if ('problem' in r) {
      report(ctx, [...path, key], r.problem);
      continue;
    }
    if (key === 'to') {
      const why = unmodifiable(r.ref) ?? (unsettableVr(r.vr) ? `${text} is ${unsettableVr(r.vr)}: it cannot be copied to` : undefined);
      if (why) {
        report(ctx, [...path, key], why);
        continue;
      }
    } else if (r.vr === 'SQ') {
      report(ctx, [...path, key], `${text} is a sequence: copy works on values, not sequences`);
      continue;
    }
    ends.push(r);
  }
  return ends.length === 2 ? { op: 'copy', from: ends[0].ref, to: ends[1].ref } : undefined;
}

function parseReject(r: unknown, path: Seg[], ruleName: string, ctx: ParseContext): { status: number; comment: string } | undefined {
  if (!isObject(r)) return undefined;
  let status: number | undefined;
  const s = r.status;
  if (typeof s === 'number') {
    const source = ctx.sourceOf([...path, 'status']) ?? String(s);
    if (/^0x/i.test(source)) status = s;
    else if (/^\d{1,4}$/.test(source)) report(ctx, [...path, 'status'], `write the status in hexadecimal: 0x${source.padStart(4, '0')} or '${source.padStart(4, '0')}' in quotes (YAML reads ${source} as the decimal number ${s})`);
    else report(ctx, [...path, 'status'], `must be a status of 4 hex digits such as 0xA700 or 'C001' (got ${source})`);
  } else if (typeof s === 'string' && /^(0[xX])?[0-9A-Fa-f]{4}$/.test(s.trim())) {
    status = Number.parseInt(s.trim().replace(/^0[xX]/, ''), 16);
  } else if (typeof s === 'string') {
    report(ctx, [...path, 'status'], `must be a status of 4 hex digits such as 0xA700 or 'C001' (got '${s}')`);
  }
  if (status !== undefined && (status < 0 || status > 0xffff)) {
    report(ctx, [...path, 'status'], `must be a status from 0x0000 to 0xFFFF (got ${s})`);
    status = undefined;
  }
  if (status !== undefined && statusCategory(status) !== 'failure') {
    report(ctx, [...path, 'status'], `${formatStatus(status, 'storage')} is a ${statusCategory(status)} status; reject needs a failure status (Axxx, Cxxx, or a failure 0xxx code such as 0x0122)`);
    status = undefined;
  }
  let comment = `rejected by routing rule '${ruleName}'`.slice(0, 64);
  if (typeof r.comment === 'string') {
    // Error Comment (0000,0902) is LO in the command set: default repertoire, no backslash (PS3.7 C.4.1).
    if (/[^\x20-\x7e]|\\/.test(r.comment)) {
      report(ctx, [...path, 'comment'], 'must use only printable ASCII characters and no backslash (Error Comment, VR LO)');
      return undefined;
    }
    comment = r.comment.trim();
  }
  return status === undefined ? undefined : { status, comment };
}
