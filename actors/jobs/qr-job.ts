// A Q/R request that goes upstream, as a job in the actor tree (the root's JOB_STARTED / JOB_ENDED):
// machines/qr-upstream.machine.ts for a C-FIND or a relayed C-MOVE, machines/retrieve-through.machine.ts
// for a retrieve-through. The associations it opens (toward the archives, to the move destination) are
// the job's children: `owner.open` spawns the PS3.8 machine that ScuAssociation then drives, and
// `owner.close` stops it once the association has ended. Without a host (unit tests of the runners)
// there is no job and the associations are standalone machines, as before.
import type { AnyActorLogic, AnyActorRef } from 'xstate';
import type { AssociationMachineRef } from '../net/association.ts';
import type { PeerConfig } from '../../config/config.ts';
import type { QrUpstreamInput } from '../../machines/qr-upstream.machine.ts';
import { UNIQUE_KEYS } from '../../protocol/qr-matching.ts';
import type { ParsedIdentifier, QrContext, QrRequest } from './qr-scp.ts';

/** Who owns the upstream associations a request opens (the job, in the actor tree). */
export type AssociationOwner = {
  /** A fresh association machine (Sta1), child of the job; undefined when there is no job. */
  open(peer: string): AssociationMachineRef | undefined;
  /** The association has ended: its machine leaves the tree. */
  close(ref: AssociationMachineRef): void;
};

export type QrJob = { id: string; ref: AnyActorRef | undefined; owner: AssociationOwner; send(event: { type: string } & Record<string, unknown>): void; end(status: number): void };

const counters = new Map<string, number>();

/** Starts the job `${kind}-N` under the root (absent a host: a job that shows nothing). */
export function startQrJob(ctx: QrContext, kind: string, logic: AnyActorLogic, input: unknown): QrJob {
  const n = (counters.get(kind) ?? 0) + 1;
  counters.set(kind, n);
  const id = `${kind}-${n}`;
  const ref = ctx.jobs?.start(id, logic, input);
  const next = new Map<string, number>();
  const ids = new WeakMap<AssociationMachineRef, string>();
  const owner: AssociationOwner = {
    open(peer) {
      if (!ref || ref.getSnapshot().status !== 'active') return undefined;
      const n = (next.get(peer) ?? 0) + 1;
      next.set(peer, n);
      const childId = `association:${peer}#${n}`;
      // Sent from outside any transition: the job spawns the child at once and it can be read back.
      ref.send({ type: 'ASSOCIATION_OPENING', id: childId });
      const child = (ref.getSnapshot() as { children: Record<string, AssociationMachineRef | undefined> }).children[childId];
      if (child) ids.set(child, childId);
      return child;
    },
    close(child) {
      const childId = ids.get(child);
      if (childId && ref?.getSnapshot().status === 'active') ref.send({ type: 'ASSOCIATION_CLOSED', id: childId });
    },
  };
  return {
    id,
    ref,
    owner,
    send: (event) => {
      if (ref?.getSnapshot().status === 'active') ref.send(event);
    },
    end: (status) => {
      if (ref?.getSnapshot().status === 'active') ref.send({ type: 'ENDED', status });
      ctx.jobs?.end(id);
    },
  };
}

/** What a Q/R job shows: the service, who asked, the level and its unique key, the archives. */
export function jobInput(service: QrUpstreamInput['service'], parsed: ParsedIdentifier, req: QrRequest, upstream: PeerConfig[], destination?: string): QrUpstreamInput {
  const key = UNIQUE_KEYS[parsed.level][0];
  return { service, requester: req.callingAeTitle, level: parsed.level, uid: parsed.keys[key] ?? '', sources: upstream.map((p) => p.name), ...(destination ? { destination } : {}) };
}

