// A C-FIND or a relayed C-MOVE the router passes on to its upstream archives (issue 16), as a job in the
// actor tree while it runs: who asked, what, from which archives, how many matches each gave so far (or
// the relayed sub-operation counts). The associations it opens toward the archives are its children
// (the PS3.8 machine, driven by actors/net/scu.ts): spawned when opened, stopped once closed, so the
// inspector shows each upstream association (and its C-FIND/C-MOVE SCU transaction) under the request
// that caused it. The work is done by actors/jobs/qr-scp-find.ts and qr-scp-relay.ts; the job leaves
// the tree when the last upstream association has ended (after the final response went back).
import { assertEvent, assign, enqueueActions, setup, stopChild } from 'xstate';
import { associationMachine } from './association.machine.ts';
import type { DulInput } from './association.machine.ts';
import type { SubOperations } from './dimse/dimse.events.ts';

/** An upstream association this job owns: spawned as a child (in Sta1) before it is opened, stopped after. */
export type OwnedAssociationEvent = { type: 'ASSOCIATION_OPENING'; id: string } | { type: 'ASSOCIATION_CLOSED'; id: string };

/** As ScuAssociation.open gives a machine of its own (its transactions' timeouts are the SCU's). */
export const OWNED_ASSOCIATION_INPUT: DulInput = { artimTimeoutMs: 30_000 };

export type QrUpstreamInput = { service: 'C-FIND' | 'C-MOVE' | 'C-GET'; requester: string; level: string; uid: string; sources: string[]; destination?: string };

export type QrUpstreamEvent =
  | { type: 'MATCHES'; bySource: Record<string, number> }
  | { type: 'PROGRESS'; suboperations: SubOperations }
  | { type: 'ENDED'; status: number }
  | OwnedAssociationEvent;

type Context = QrUpstreamInput & { matches: Record<string, number>; suboperations?: SubOperations; status?: number };

export const qrUpstreamMachine = setup({
  types: { input: {} as QrUpstreamInput, context: {} as Context, events: {} as QrUpstreamEvent },
  actors: { association: associationMachine },
  actions: {
    recordMatches: assign(({ event }) => {
      assertEvent(event, 'MATCHES');
      return { matches: { ...event.bySource } };
    }),
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { suboperations: { ...event.suboperations } };
    }),
    recordEnd: assign(({ event }) => {
      assertEvent(event, 'ENDED');
      return { status: event.status };
    }),
    spawnAssociation: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'ASSOCIATION_OPENING');
      enqueue.spawnChild('association', { id: event.id, input: OWNED_ASSOCIATION_INPUT });
    }),
    stopAssociation: stopChild(({ event }) => {
      assertEvent(event, 'ASSOCIATION_CLOSED');
      return event.id;
    }),
  },
}).createMachine({
  id: 'qrUpstream',
  context: ({ input }) => ({ ...input, matches: {} }),
  initial: 'running',
  on: {
    ASSOCIATION_OPENING: { actions: 'spawnAssociation' },
    ASSOCIATION_CLOSED: { actions: 'stopAssociation' },
  },
  states: {
    running: {
      on: {
        MATCHES: { actions: 'recordMatches' },
        PROGRESS: { actions: 'recordProgress' },
        ENDED: { target: 'ended', actions: 'recordEnd' },
      },
    },
    ended: { type: 'final' },
  },
});
