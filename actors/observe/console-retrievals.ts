// The console's "Retrievals" section (issue 16): each retrieve-through under way, read from its job in
// the actor tree (machines/retrieve-through.machine.ts, a child of the root while it runs): who asked,
// where it goes, what (the study, or the level's unique key), the counts so far on both sides, its
// state and how many associations it has open (upstream and to the destination).
import type { AnyActorRef } from 'xstate';
import type { SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { RetrieveThroughInput } from '../../machines/retrieve-through.machine.ts';
import { MASK } from './inspector-model.ts';

export type RetrievalShown = {
  id: string;
  service: string;
  requester: string;
  destination: string;
  level: string;
  /** The level's unique key: the Study Instance UID at STUDY level (a Patient ID, masked, at PATIENT). */
  uid: string;
  sources: string[];
  state: string;
  upstream: SubOperations;
  delivered: SubOperations;
  waiting: number;
  associations: string[];
};

type Context = RetrieveThroughInput & { upstream: SubOperations; delivered: SubOperations; waiting: number };

export function retrievalsOf(root: AnyActorRef, showPhi: boolean): RetrievalShown[] {
  const shown: RetrievalShown[] = [];
  for (const [id, child] of Object.entries(root.getSnapshot().children as Record<string, AnyActorRef | undefined>)) {
    if (!id.startsWith('retrieve-through-') || !child) continue;
    const snap = child.getSnapshot() as { value: unknown; context?: Context; children?: Record<string, unknown> };
    const c = snap.context;
    if (!c) continue;
    shown.push({
      id,
      service: c.service ?? 'C-MOVE',
      requester: c.requester ?? '',
      destination: c.to.replace(/^destination /, ''),
      level: c.level,
      uid: c.level === 'PATIENT' && !showPhi ? MASK : c.uid,
      sources: c.sources,
      state: typeof snap.value === 'string' ? snap.value : JSON.stringify(snap.value),
      upstream: c.upstream,
      delivered: c.delivered,
      waiting: c.waiting,
      associations: Object.keys(snap.children ?? {}),
    });
  }
  return shown;
}
