// What the inspector shows, built from the live actor system: the actor tree with each actor's state,
// one actor's context, recent events and state diagram. Everything leaving the process goes through
// `sanitize`: bytes become their length, actor references their id, and patient-identifying values
// are masked unless `showPhi` (issue 6).
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { machineIdOf } from './metrics.ts';

export type ActorNode = {
  id: string;
  sessionId: string;
  /** The machine's id ('listener', 'association', 'peer', 'cStoreScp' …). */
  machine: string;
  /** The current state, as dotted paths ('connected.sending'); several for parallel states. */
  state: string[];
  status: string;
  /** A one-line description (AE titles of an association, queue of a peer …). */
  summary?: string;
  /** Extra facts not in the machine's context (queue depth of a peer). */
  extra?: Record<string, unknown>;
  children: ActorNode[];
};

export type RecentEvent = { at: string; type: string; source?: string; event: unknown };

export type StateDiagram = {
  machine: string;
  states: { path: string; depth: number; type: string; transitions: { event: string; targets: string[] }[] }[];
  active: string[];
};

/** Keys whose values identify a patient (DICOM keywords and the camelCase the code uses). */
const PHI_KEY = /patient|accession|referringphysician|otherpatient|birth|issuerofpatient|personname|physician|operatorsname|institutionaddress/i;
export const MASK = '•••';

/** JSON-safe, bounded, PHI-masked copy of a value. */
export function sanitize(value: unknown, opts: { showPhi: boolean }, depth = 0, key = ''): unknown {
  if (!opts.showPhi && key && PHI_KEY.test(key) && value !== undefined && value !== null && value !== '') return MASK;
  if (value === null || value === undefined) return value;
  const t = typeof value;
  if (t === 'string') return (value as string).length > 500 ? `${(value as string).slice(0, 500)}…` : value;
  if (t === 'number' || t === 'boolean') return value;
  if (t === 'bigint') return String(value);
  if (t === 'function' || t === 'symbol') return undefined;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (value instanceof ArrayBuffer) return `<${value.byteLength} bytes>`;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return value.message;
  const v = value as Record<string, unknown>;
  if (typeof v.sessionId === 'string' && typeof v.send === 'function') return { actor: v.id };
  if (depth >= 6) return '…';
  if (value instanceof Map) return sanitize(Object.fromEntries(value), opts, depth, key);
  if (value instanceof Set) return sanitize([...value], opts, depth, key);
  if (Array.isArray(value)) {
    const items = value.slice(0, 50).map((x) => sanitize(x, opts, depth + 1));
    if (value.length > 50) items.push(`… ${value.length - 50} more`);
    return items;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const s = sanitize(x, opts, depth + 1, k);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/** XState state values as dotted paths: 'a' → ['a'], {a: {b: 'c'}} → ['a.b.c']. */
export function statePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return prefix ? [prefix.slice(0, -1)] : [];
    return entries.flatMap(([k, v]) => statePaths(v, `${prefix}${k}.`));
  }
  return [];
}

type Snapshot = { value?: unknown; status?: string; context?: Record<string, unknown>; children?: Record<string, AnyActorRef | undefined> };

function snapshotOf(ref: AnyActorRef): Snapshot {
  try {
    return ref.getSnapshot() as Snapshot;
  } catch {
    return {};
  }
}

export type TreeExtras = (node: ActorNode, context: Record<string, unknown> | undefined) => void;

/** The actor tree under `root`, as it is now. */
export function actorTree(root: AnyActorRef, extras?: TreeExtras): ActorNode {
  const snap = snapshotOf(root);
  const node: ActorNode = {
    // The root actor's id is its system id ('x:0'); its machine's id names it better.
    id: root.id === root.sessionId ? machineIdOf(root) ?? root.id : root.id,
    sessionId: root.sessionId,
    machine: machineIdOf(root) ?? root.id,
    state: statePaths(snap.value),
    status: snap.status ?? 'unknown',
    children: [],
  };
  node.summary = summaryOf(node.machine, snap.context);
  extras?.(node, snap.context);
  for (const child of Object.values(snap.children ?? {})) if (child) node.children.push(actorTree(child, extras));
  return node;
}

/** Non-PHI one-liners an operator scans for. */
function summaryOf(machine: string, c: Record<string, unknown> | undefined): string | undefined {
  if (!c) return undefined;
  if (machine === 'association') {
    const rq = c.associateRq as { callingAeTitle?: string; calledAeTitle?: string } | undefined;
    return rq ? `${rq.callingAeTitle} → ${rq.calledAeTitle}${c.role ? ` (${c.role})` : ''}` : undefined;
  }
  if (machine === 'listener') {
    const active = (c.active as unknown[] | undefined)?.length ?? 0;
    return `${active} open, ${c.accepted ?? 0} accepted`;
  }
  if (machine === 'peer') return `circuit ${c.circuit}, ${c.delivered ?? 0} delivered, ${c.failed ?? 0} failed`;
  const command = c.command as { AffectedSOPInstanceUID?: string } | undefined;
  if (command?.AffectedSOPInstanceUID) return `message ${c.messageId}`;
  return undefined;
}

export function findActor(root: AnyActorRef, sessionIdOrId: string): AnyActorRef | undefined {
  if (root.sessionId === sessionIdOrId || root.id === sessionIdOrId) return root;
  for (const child of Object.values(snapshotOf(root).children ?? {})) {
    const found = child && findActor(child, sessionIdOrId);
    if (found) return found;
  }
  return undefined;
}

type StateNodeLike = {
  key: string;
  path: string[];
  type: string;
  states: Record<string, StateNodeLike>;
  transitions: Map<string, { eventType: string; target?: StateNodeLike[] }[]>;
  always?: { target?: StateNodeLike[] }[];
};

/** The machine's states and transitions, and which are active, for drawing. */
export function stateDiagram(ref: AnyActorRef): StateDiagram | undefined {
  const root = (ref as { logic?: { root?: StateNodeLike } }).logic?.root;
  if (!root) return undefined;
  const states: StateDiagram['states'] = [];
  const walk = (n: StateNodeLike) => {
    if (n.path.length > 0) {
      const transitions: { event: string; targets: string[] }[] = [];
      for (const [event, defs] of n.transitions ?? new Map()) {
        const targets = defs.flatMap((d) => (d.target ?? []).map((t) => t.path.join('.')));
        transitions.push({ event: event.replace(/^xstate\.after\.([^.]+)\..*$/, (_, d: string) => (/^\d+$/.test(d) ? `after ${d} ms` : `after ${d}`)), targets: [...new Set(targets)] });
      }
      for (const a of n.always ?? []) transitions.push({ event: 'always', targets: (a.target ?? []).map((t) => t.path.join('.')) });
      states.push({ path: n.path.join('.'), depth: n.path.length, type: n.type, transitions });
    }
    for (const child of Object.values(n.states ?? {})) walk(child);
  };
  walk(root);
  const active = statePaths(snapshotOf(ref).value);
  // Ancestors of an active leaf are active too.
  const all = new Set<string>();
  for (const p of active) p.split('.').forEach((_, i, parts) => all.add(parts.slice(0, i + 1).join('.')));
  return { machine: machineIdOf(ref) ?? ref.id, states, active: [...all] };
}

/** The last events each actor received, from the inspection stream (bounded per actor and in actors). */
export class RecentEvents {
  private readonly byActor = new Map<string, (Omit<RecentEvent, 'at'> & { at: number })[]>();
  private readonly perActor: number;
  private readonly maxActors: number;

  constructor(perActor = 25, maxActors = 500) {
    this.perActor = perActor;
    this.maxActors = maxActors;
  }

  observe(event: InspectionEvent): void {
    if (event.type !== '@xstate.event') return;
    const id = event.actorRef.sessionId;
    let list = this.byActor.get(id);
    if (!list) {
      if (this.byActor.size >= this.maxActors) this.byActor.delete(this.byActor.keys().next().value!);
      list = [];
      this.byActor.set(id, list);
    }
    // Kept as it came and made safe (bytes → length, PHI masked) only when read: recording must be cheap.
    // Bulk data never comes this way (P-DATA is no event in a data-transfer state; a C-FIND identifier is small).
    list.push({ at: Date.now(), type: (event.event as { type: string }).type, source: (event.sourceRef as AnyActorRef | undefined)?.id, event: event.event });
    if (list.length > this.perActor) list.shift();
  }

  of(sessionId: string, opts: { showPhi: boolean }): RecentEvent[] {
    return (this.byActor.get(sessionId) ?? []).map((e) => ({ ...e, at: new Date(e.at).toISOString(), event: sanitize(e.event, opts) }));
  }
}
