// JSON views of the live actor tree for the inspector's API: open associations, peers with their slots
// and outbound associations, prefetch jobs with their recorded steps.
import type { AnyActorRef } from 'xstate';
import type { RouterConfig } from '../../config/config.ts';
import { peerId } from '../../machines/router.machine.ts';
import type { RunningRouter } from '../router.ts';
import { slotsOf } from '../router.ts';
import { findActor, sanitize } from './inspector-model.ts';
import type { ActorNode } from './inspector-model.ts';

export function flatten(node: ActorNode): ActorNode[] {
  return [node, ...node.children.flatMap(flatten)];
}

/** Open associations with their listener, upper-layer state and transactions. */
export function associations(root: ActorNode) {
  return root.children
    .filter((l) => l.machine === 'listener')
    .flatMap((l) =>
      l.children.map((a) => ({
        id: a.id,
        listener: l.id.replace(/^listener:/, ''),
        state: a.state.join(','),
        summary: a.summary,
        transactions: a.children.map((d) => ({ id: d.id, service: d.machine, state: d.state.join(','), status: d.status })),
      })),
    );
}

export function peers(root: ActorNode, config: RouterConfig, depth: (peer: string) => { pending: number; dead: number }) {
  const slots = root.children.filter((n) => n.machine === 'peer');
  return config.peers.map((p) => ({
    name: p.name,
    aeTitle: p.aeTitle,
    address: `${p.host}:${p.port}`,
    queue: depth(p.name),
    slots: slotsOf(p).map((slot) => {
      const n = slots.find((s) => s.id === peerId(slot));
      // The slot's outbound association (its 'association' child while connected), with its transactions.
      const a = n?.children.find((c) => c.machine === 'association');
      const association = a && { id: a.id, state: a.state.join(','), summary: a.summary, transactions: a.children.map((d) => ({ id: d.id, service: d.machine, state: d.state.join(','), status: d.status })) };
      return { slot, state: n?.state.join(',') ?? 'absent', summary: n?.summary, backoffUntil: n?.extra?.backoffUntil, nextDueAt: n?.extra?.nextDueAt, association: association ?? null };
    }),
  }));
}

/**
 * Prefetch jobs in the tree (any actor whose machine id contains 'prefetch', wherever it hangs), with
 * their context (priors and their states) and the steps recorded in LMDB (`history`), when the job id
 * can be read from the actor id ('prefetch-ID', 'prefetch:ID' or 'ID').
 */
export function prefetchJobs(tree: ActorNode, root: AnyActorRef, router: RunningRouter, showPhi: boolean) {
  return flatten(tree)
    .filter((n) => /prefetch/i.test(n.machine))
    .map((n) => {
      const context = (findActor(root, n.sessionId)?.getSnapshot() as { context?: { job?: { id?: string } } } | undefined)?.context;
      const id = context?.job?.id ?? n.id.replace(/^prefetch[-:]/, '');
      let history: unknown = null;
      try {
        history = router.prefetch.jobs.get(id)?.history ?? null;
      } catch {
        // LMDB closed (shutting down): the live context is still there.
      }
      return { ...n, children: undefined, context: sanitize(context, { showPhi }), history: sanitize(history, { showPhi }) };
    });
}
