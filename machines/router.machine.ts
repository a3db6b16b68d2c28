// The root of the actor system: one listener machine per configured listener AE, one peer machine
// per configured peer AE. The actors
// layer (actors/router.ts) binds the sockets and wires the spool; this machine is the tree an
// operator sees in the inspector.
import { assign, setup } from 'xstate';
import { listenerMachine } from './listener.machine.ts';
import type { ListenerInput } from './listener.machine.ts';
import { peerMachine } from './peer.machine.ts';
import type { PeerInput } from './peer.machine.ts';

export type RouterInput = { listeners: ListenerInput[]; peers: PeerInput[] };

type Context = { listenerIds: string[]; stopReason?: string };

export type RouterEvent =
  | { type: 'LISTENER_READY'; name: string }
  | { type: 'LISTENER_FAILED'; name: string; error: string }
  | { type: 'SHUTDOWN_REQUESTED'; reason: string };

export const listenerId = (name: string) => `listener:${name}`;
export const peerId = (name: string) => `peer:${name}`;

export const routerMachine = setup({
  types: { input: {} as RouterInput, context: {} as Context, events: {} as RouterEvent },
  actors: { listener: listenerMachine, peer: peerMachine },
  actions: {
    recordStop: assign({ stopReason: ({ event }) => ('reason' in event ? event.reason : 'error' in event ? event.error : undefined) }),
  },
}).createMachine({
  id: 'router',
  context: ({ input, spawn }) => {
    for (const listener of input.listeners) spawn('listener', { id: listenerId(listener.name), input: listener });
    for (const peer of input.peers) spawn('peer', { id: peerId(peer.peer), input: peer });
    return { listenerIds: input.listeners.map((l) => listenerId(l.name)) };
  },
  initial: 'starting',
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
