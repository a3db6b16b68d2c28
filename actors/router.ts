// The actor system: the root router machine with its listener machines, their sockets, and the
// spool they store into. Everything that touches the world is provided here to the pure machines.
import type { Logger } from 'pino';
import { createActor, fromPromise } from 'xstate';
import type { InspectionEvent } from 'xstate';
import type { ListenerConfig, RouterConfig } from '../config/config.ts';
import { associationMachine } from '../machines/association.machine.ts';
import { cStoreScpMachine } from '../machines/dimse/c-store-scp.machine.ts';
import type { StoreInstanceInput } from '../machines/dimse/c-store-scp.machine.ts';
import { listenerMachine } from '../machines/listener.machine.ts';
import type { ListenerActorRef } from '../machines/listener.machine.ts';
import { listenerId, routerMachine } from '../machines/router.machine.ts';
import type { AcceptorPolicy } from '../protocol/negotiation.ts';
import { DEFAULT_STORAGE_SOP_CLASSES, DEFAULT_TRANSFER_SYNTAXES, VERIFICATION_SOP_CLASS } from '../protocol/uids.ts';
import { storeInstanceFor } from './acceptor.ts';
import { startListener } from './listener.ts';
import type { RunningListener } from './listener.ts';
import { Spool } from './spool.ts';

export type RunningRouter = {
  actor: ReturnType<typeof createActor<typeof routerMachine>>;
  spool: Spool;
  /** Bound port of each listener, by listener name (useful when the config says port 0). */
  ports: Map<string, number>;
  /** Stop accepting; associations still open after `graceMs` are cut. */
  stop(graceMs?: number): Promise<void>;
};

export const routerLogic = routerMachine.provide({
  actors: {
    listener: listenerMachine.provide({
      actors: {
        association: associationMachine.provide({
          actors: {
            cStoreScp: cStoreScpMachine.provide({
              actors: {
                storeInstance: fromPromise(({ input }: { input: StoreInstanceInput }) => storeInstanceFor(input.associationId, input.messageId)),
              },
            }),
          },
        }),
      },
    }),
  },
});

export function acceptorPolicy(listener: ListenerConfig): AcceptorPolicy {
  return {
    aeTitles: listener.aeTitles,
    acceptCallingAeTitles: listener.acceptCallingAeTitles,
    sopClasses: listener.sopClasses === 'default' ? [VERIFICATION_SOP_CLASS, ...DEFAULT_STORAGE_SOP_CLASSES] : listener.sopClasses,
    transferSyntaxes: listener.transferSyntaxes === 'default' ? DEFAULT_TRANSFER_SYNTAXES : listener.transferSyntaxes,
    transferSyntaxPolicy: listener.transferSyntaxPolicy,
    maxPduLength: listener.maxPduLength,
  };
}

export async function startRouter(
  config: RouterConfig,
  opts: { logger: Logger; inspect?: (event: InspectionEvent) => void },
): Promise<RunningRouter> {
  const log = opts.logger;
  const spool = await Spool.open({ dir: config.storage.dir, fsync: config.storage.fsync, logger: log.child({ actor: 'spool' }) });
  const actor = createActor(routerLogic, {
    input: {
      listeners: config.listeners.map((l) => ({
        name: l.name,
        maxAssociations: l.maxAssociations,
        artimTimeoutMs: l.timeouts.artimSeconds * 1000,
        dimseTimeoutMs: l.timeouts.dimseSeconds * 1000,
      })),
    },
    inspect: opts.inspect,
  });
  actor.start();
  const listeners: RunningListener[] = [];
  const ports = new Map<string, number>();
  try {
    for (const l of config.listeners) {
      const ref = actor.getSnapshot().children[listenerId(l.name)] as ListenerActorRef;
      const listener = await startListener(
        {
          name: l.name,
          policy: acceptorPolicy(l),
          idleTimeoutMs: l.timeouts.idleSeconds * 1000,
          dimseTimeoutMs: l.timeouts.dimseSeconds * 1000,
          ref,
          spool,
          logger: log,
        },
        { bind: l.bind, port: l.port, allowedSources: l.allowedSources },
      );
      listeners.push(listener);
      ports.set(l.name, listener.port);
      actor.send({ type: 'LISTENER_READY', name: l.name });
    }
  } catch (err) {
    await Promise.all(listeners.map((s) => s.close(0)));
    actor.stop();
    await spool.close();
    throw err;
  }
  let stopped = false;
  return {
    actor,
    spool,
    ports,
    async stop(graceMs = 5000) {
      if (stopped) return;
      stopped = true;
      actor.send({ type: 'SHUTDOWN_REQUESTED', reason: 'stop requested' });
      await Promise.all(listeners.map((s) => s.close(graceMs)));
      actor.stop();
      await spool.close();
    },
  };
}
