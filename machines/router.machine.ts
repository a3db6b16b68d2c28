// The root of the actor system: one listener machine per configured listener AE, one peer machine
// per configured peer AE. The actors
// layer (actors/router.ts) binds the sockets and wires the spool; this machine is the tree an
// operator sees in the inspector.
import { assign, enqueueActions, setup, stopChild } from 'xstate';
import type { AnyActorLogic } from 'xstate';
import { listenerMachine } from './listener.machine.ts';
import type { ListenerInput } from './listener.machine.ts';
import { peerMachine } from './peer.machine.ts';
import type { PeerInput } from './peer.machine.ts';

export type RouterInput = { listeners: ListenerInput[]; peers: PeerInput[] };

type Context = { listenerIds: string[]; stopReason?: string };

export type RouterEvent =
  | { type: 'LISTENER_READY'; name: string }
  | { type: 'LISTENER_FAILED'; name: string; error: string }
  | { type: 'SHUTDOWN_REQUESTED'; reason: string }
  /**
   * A job the actors layer started (a prefetch job, a study waiting for completion): adopted as a
   * child so it is part of the system (the inspector's tree, the inspection stream, stopped with the
   * root). Its logic comes with the event because the actors layer provides its world.
   */
  | { type: 'JOB_STARTED'; id: string; logic: AnyActorLogic; input?: unknown }
  /** The job is over: it leaves the tree. */
  | { type: 'JOB_ENDED'; id: string };

export const listenerId = (name: string) => `listener:${name}`;
export const peerId = (name: string) => `peer:${name}`;

export const routerMachine = setup({
  types: { input: {} as RouterInput, context: {} as Context, events: {} as RouterEvent },
  actors: { listener: listenerMachine, peer: peerMachine },
  actions: {
    adoptJob: enqueueActions(({ event, enqueue, self }) => {
      if (event.type !== 'JOB_STARTED' || self.getSnapshot().children[event.id]) return;
      // setup() types spawnChild for the registered actors only; a job's logic arrives at run time.
      const spawnJob = enqueue.spawnChild as unknown as (logic: AnyActorLogic, options: { id: string; input: unknown }) => void;
      spawnJob(event.logic, { id: event.id, input: event.input });
    }),
    dropJob: stopChild(({ event }) => (event.type === 'JOB_ENDED' ? event.id : '')),
    recordStop: assign({ stopReason: ({ event }) => ('reason' in event ? event.reason : 'error' in event ? event.error : undefined) }),
  },
}).createMachine({
  id: 'router',
  context: ({ input, spawn }) => {
    // Each also registered under its id as systemId: the actors layer finds it with system.get.
    for (const listener of input.listeners) spawn('listener', { id: listenerId(listener.name), systemId: listenerId(listener.name), input: listener });
    for (const peer of input.peers) spawn('peer', { id: peerId(peer.peer), systemId: peerId(peer.peer), input: peer });
    return { listenerIds: input.listeners.map((l) => listenerId(l.name)) };
  },
  initial: 'starting',
  on: {
    JOB_STARTED: { actions: 'adoptJob' },
    JOB_ENDED: { actions: 'dropJob' },
  },
  states: {
    starting: {
      on: {
        LISTENER_FAILED: { target: 'stopping', actions: 'recordStop' },
        SHUTDOWN_REQUESTED: { target: 'stopping', actions: 'recordStop' },
        LISTENER_READY: 'running',
      },
    },
    running: {
      on: {
        LISTENER_FAILED: { target: 'stopping', actions: 'recordStop' },
        SHUTDOWN_REQUESTED: { target: 'stopping', actions: 'recordStop' },
      },
    },
    stopping: {},
  },
});
