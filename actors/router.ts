// The actor system: the root router machine with its listener machines, their sockets, and the
// spool they store into. Everything that touches the world is provided here to the pure machines.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createActor, fromPromise } from 'xstate';
import type { AnyActorLogic, AnyActorRef, InspectionEvent } from 'xstate';
import type { ListenerConfig, PeerConfig, RouterConfig } from '../config/config.ts';
import type { ListenerActorRef } from '../machines/listener.machine.ts';
import { peerMachine } from '../machines/peer.machine.ts';
import type { PeerActorInput, PeerActorRef, PeerInput } from '../machines/peer.machine.ts';
import { listenerId, peerId, routerMachine } from '../machines/router.machine.ts';
import type { AcceptorPolicy } from '../protocol/negotiation.ts';
import { DEFAULT_STORAGE_SOP_CLASSES, DEFAULT_TRANSFER_SYNTAXES, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, VERIFICATION_SOP_CLASS } from '../protocol/uids.ts';
import type { RoutingRuntime } from './net/acceptor.ts';
import type { StoredInstance } from './jobs/qr-scp.ts';
import { PeerForwarder } from './forward/forwarder.ts';
import { OutboundQueue } from './forward/outbound-queue.ts';
import { LocalForwardQueue } from './forward/forward-queue.ts';
import { ClusterNode } from './cluster/cluster-node.ts';
import { PrefetchService } from './jobs/prefetch.ts';
import { AssociationSlots, QR_SCP_SOP_CLASSES, StoredInstances } from './jobs/qr-scp.ts';
import { CompletionTracker } from './jobs/completion.ts';
import { CommitmentService } from './jobs/commitment.ts';
import { CommitmentScuService } from './jobs/commitment-scu.ts';
import { AuditTrail } from './observe/audit.ts';
import { DomainEvents } from './observe/domain-events.ts';
import { startRetention } from './ingest/retention.ts';
import type { JournalIo } from './ingest/journal.ts';
import { RulesWatcher } from './rules-watcher.ts';
import { startListener } from './net/listener.ts';
import type { RunningListener } from './net/listener.ts';
import { drainPeers } from './shutdown.ts';
import { PeerGates } from './forward/peer-gate.ts';
import { logPeerSignals } from './forward/peer-signals.ts';
import { Spool } from './ingest/spool.ts';
import { startTlsSupervisor } from './net/tls.ts';
import type { CertificateInfo } from './net/tls.ts';

export type RunningRouter = {
  actor: ReturnType<typeof createActor<typeof routerMachine>>;
  spool: Spool;
  queue: OutboundQueue;
  /** Prefetch jobs (actors/jobs/prefetch.ts): list, inspect. */
  prefetch: PrefetchService;
  /** Series/studies waiting for completion (actors/jobs/completion.ts). */
  completion: CompletionTracker;
  /** Storage commitment requests (actors/jobs/commitment.ts). */
  commitment: CommitmentService;
  /** Storage commitment asked of peers (actors/jobs/commitment-scu.ts). */
  commitmentScu: CommitmentScuService;
  rules: RulesWatcher;
  /** The router's domain events (instance stored/forwarded/failed, associations): RxJS streams. */
  events: DomainEvents;
  /** The parties of an open listener association, by its id (for log lines written outside its acceptor). */
  associationParties(id: string): { listener: string; peer: string; callingAe: string; calledAe: string } | undefined;
  /** Bound port of each listener, by listener name (useful when the config says port 0). */
  ports: Map<string, number>;
  /** Every configured TLS certificate with its expiry (for the inspector). */
  tlsCertificates(): CertificateInfo[];
  /** This node of a cluster (config `cluster`: the shared PostgreSQL queue); absent for a single router. */
  cluster?: ClusterNode;
  /** Stop accepting; associations still open after `graceMs` are cut. */
  stop(graceMs?: number): Promise<void>;
};

/** The system's logic with the world provided: this router's forwarders, by peer name (a C-STORE transaction's store comes in its input). */
export function routerLogic(forwarders: ReadonlyMap<string, PeerForwarder>) {
  const forwarderFor = (input: PeerActorInput): PeerForwarder => {
    const f = forwarders.get(input.peer);
    if (!f) throw new Error(`no forwarder for peer ${input.peer}`);
    return f;
  };
  return routerMachine.provide({
    actors: {
      peer: peerMachine.provide({
        actors: {
          // The peer machine's association child is the one driven: the association is in the actor tree.
          openAssociation: fromPromise(({ input }: { input: PeerActorInput }) => forwarderFor(input).open(input.association?.())),
          sendNextItem: fromPromise(({ input }: { input: PeerActorInput }) => forwarderFor(input).sendNext()),
          releaseAssociation: fromPromise(({ input }: { input: PeerActorInput }) => forwarderFor(input).release()),
        },
      }),
    },
  });
}

/**
 * A peer machine's input from its configuration: the peer's own retry settings govern its reconnect
 * backoff (transient rejects, refused connections), and an exclusive peer's association is released as
 * soon as its batch is sent.
 */
export function peerInput(p: PeerConfig, slot: string): PeerInput {
  return {
    peer: slot,
    idleReleaseMs: p.idleReleaseSeconds * 1000,
    releaseAfterBatch: p.exclusive,
    backoffInitialMs: p.retry.initialBackoffSeconds * 1000,
    backoffMaxMs: p.retry.maxBackoffSeconds * 1000,
  };
}

/** One peer machine (and association) per slot: the peer's name, or NAME#1..NAME#n when it takes several. */
export function slotsOf(peer: PeerConfig): string[] {
  return peer.maxAssociations === 1 ? [peer.name] : Array.from({ length: peer.maxAssociations }, (_, i) => `${peer.name}#${i + 1}`);
}

export function acceptorPolicy(listener: ListenerConfig): AcceptorPolicy {
  const sopClasses = listener.sopClasses === 'default' ? [VERIFICATION_SOP_CLASS, ...DEFAULT_STORAGE_SOP_CLASSES] : listener.sopClasses;
  // Storage commitment enabled: its SOP class is accepted (with the requester's SCU role) whatever the list says.
  const commitment = listener.storageCommitment?.enabled && !sopClasses.includes(STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS) ? [STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS] : [];
  // A listener with queryRetrieve offers Patient Root and Study Root C-FIND, C-MOVE and C-GET too.
  const accepted = [...new Set([...sopClasses, ...commitment, ...(listener.queryRetrieve ? QR_SCP_SOP_CLASSES : [])])];
  return {
    aeTitles: listener.aeTitles,
    acceptCallingAeTitles: listener.acceptCallingAeTitles,
    sopClasses: accepted,
    transferSyntaxes: listener.transferSyntaxes === 'default' ? DEFAULT_TRANSFER_SYNTAXES : listener.transferSyntaxes,
    transferSyntaxPolicy: listener.transferSyntaxPolicy,
    maxPduLength: listener.maxPduLength,
    // C-GET sub-operations come back to the requestor in SCP role, for whatever class it retrieves.
    ...(listener.queryRetrieve ? { requestorScpRoleFor: accepted } : {}),
  };
}

export async function startRouter(
  config: RouterConfig,
  opts: {
    logger: Logger; inspect?: (event: InspectionEvent) => void; watchRules?: boolean;
    /** The journal's file I/O (tests inject faults: a failing fdatasync). */
    journalIo?: Partial<JournalIo>;
  },
): Promise<RunningRouter> {
  const log = opts.logger;
  const events = new DomainEvents();
  const parties = new Map<string, { listener: string; peer: string; callingAe: string; calledAe: string }>();
  events.all$.subscribe((e) => {
    // A Map's set and delete do not throw: nothing escapes this subscriber.
    if (e.type === 'association-opened') parties.set(e.association, { listener: e.listener, peer: e.address, callingAe: e.callingAe, calledAe: e.calledAe });
    else if (e.type === 'association-closed') parties.delete(e.association);
  });
  // TLS material of the listeners (watched, reloaded) and expiry warnings for every certificate.
  const tls = startTlsSupervisor(config, log.child({ actor: 'tls' }));
  const spool = await Spool.open({
    dir: config.storage.dir,
    fsync: config.storage.fsync,
    logger: log.child({ actor: 'spool' }),
    // The dataset's SHA-256 only serves `duplicates: if-changed` (fingerprints): ~0.45 ms per 512 KB otherwise spent for nothing.
    hashDatasets: config.peers.some((p) => p.duplicates === 'if-changed'),
    ...(opts.journalIo ? { journal: { io: opts.journalIo } } : {}),
  }).catch((err) => {
    tls.stop();
    throw err;
  });
  const queue = OutboundQueue.open(spool, {
    duplicates: Object.fromEntries(config.peers.map((p) => [p.name, p.duplicates])),
    logger: log.child({ actor: 'queue' }),
  });
  const audit = new AuditTrail(join(config.storage.dir, 'audit'), log.child({ actor: 'audit' }), config.audit.syslog);
  audit.applicationActivity(true);
  // The audit trail records what the domain events say (associations, instances received and forwarded).
  const audited = audit.subscribe(events, config.peers);
  let rules: RulesWatcher;
  try {
    rules = RulesWatcher.start(config.routing.rulesDir, config.peers.map((p) => p.name), log.child({ actor: 'rules' }), { watch: opts.watchRules ?? true });
  } catch (err) {
    tls.stop();
    await spool.close();
    throw err;
  }
  const forwarders = new Map<string, PeerForwarder>();
  const gates = new PeerGates(config.peers.filter((p) => p.exclusive).map((p) => p.name));
  // A cluster node (issue 17): the local queue is the outbox, the forwarders take from PostgreSQL.
  let wakeSlots: (peers: string[]) => void = () => {};
  let cluster: ClusterNode | undefined;
  if (config.cluster) {
    try {
      cluster = await ClusterNode.start(config.cluster, { spool, queue, peers: config.peers, gates, logger: log.child({ actor: 'cluster' }), wake: (peers) => wakeSlots(peers) });
    } catch (err) {
      tls.stop();
      rules.stop();
      await spool.close();
      throw err;
    }
  }
  const forwardQueue = cluster ? cluster.queue : new LocalForwardQueue(queue);
  const actor = createActor(routerLogic(forwarders), {
    input: {
      peers: config.peers.flatMap((p) => slotsOf(p).map((slot) => peerInput(p, slot))),
      listeners: config.listeners.map((l) => ({
        name: l.name,
        maxAssociations: l.maxAssociations,
        artimTimeoutMs: l.timeouts.artimSeconds * 1000,
        dimseTimeoutMs: l.timeouts.dimseSeconds * 1000,
      })),
    },
    inspect: opts.inspect,
  });
  wakeSlots = (peers: string[]) => {
    for (const name of new Set(peers)) {
      const peer = config.peers.find((p) => p.name === name);
      for (const slot of peer ? slotsOf(peer) : []) actor.system.get(peerId(slot))?.send({ type: 'WORK_AVAILABLE' });
    }
  };
  // New local queue items: a cluster node publishes them first (its NOTIFY wakes the peers of every node).
  const wake = (peers: string[]) => (cluster ? cluster.outbox.kick() : wakeSlots(peers));
  for (const p of config.peers) {
    const inFlight = new Set<string>();
    for (const slot of slotsOf(p)) {
      forwarders.set(slot, new PeerForwarder(p, { spool, queue: forwardQueue, logger: log.child({ actor: 'forwarder' }), slot, inFlight, events, gates: cluster?.slots ?? gates, wake: (peer) => wake([peer]) }));
    }
  }
  // Jobs run as children of the root: in the actor tree and its inspection stream, stopped with it.
  const prefetch = new PrefetchService(spool, config.peers, {
    logger: log.child({ actor: 'prefetch' }),
    gates,
    host: { send: (event) => actor.send(event), child: (id) => actor.getSnapshot().children[id] as AnyActorRef | undefined },
    // A cluster node: jobs are published to PostgreSQL and run by whichever node holds their lease.
    ...(cluster ? { share: cluster.prefetch } : {}),
  });
  // Groups waiting for completion: their machines are children of the root too (JOB_STARTED).
  const completionJobs = {
    start: (id: string, logic: AnyActorLogic, input: unknown) => {
      actor.send({ type: 'JOB_STARTED', id, logic, input });
      return actor.getSnapshot().children[id] as AnyActorRef | undefined;
    },
    end: (id: string) => actor.send({ type: 'JOB_ENDED', id }),
  };
  const completion = new CompletionTracker(spool, queue, {
    logger: log.child({ actor: 'completion' }),
    wake,
    jobs: completionJobs,
    // A cluster node: groups are shared through PostgreSQL, fired by the node holding their lease.
    ...(cluster ? { share: cluster.completion } : {}),
  });
  cluster?.completion.attach(completionJobs);
  // The tracker hears of each committed instance's group notes by the instance-stored domain event.
  completion.follow(events);
  // A cluster node publishes each stored instance to the shared instance directory (after its queue items).
  if (cluster) cluster.directory.follow(events, () => cluster.outbox.kick());
  const routing: RoutingRuntime = { rules: () => rules.current, queue, wake, prefetch, completion };
  const commitmentScu = new CommitmentScuService({
    spool, queue, peers: config.peers, events, logger: log.child({ actor: 'commitment-scu' }), rules: () => rules.current, gates,
  });
  const commitment = new CommitmentService({
    spool, queue, peers: config.peers, listeners: config.listeners, logger: log.child({ actor: 'commitment' }),
    holds: (sop) => completion.holds(sop),
    downstream: (sop) => commitmentScu.downstream(sop),
    // A cluster node: instances stored on other nodes are found in the shared instance directory.
    ...(cluster ? { elsewhere: (sops: string[]) => cluster.directory.elsewhere(sops), share: cluster.commitments } : {}),
    ruleCommitWhen: (rule) => rules.current.rules.find((r) => r.name === rule)?.commitWhen,
    // Each open request is a child of the root too (machines/commitment.machine.ts).
    jobs: {
      start: (id, logic, input) => {
        actor.send({ type: 'JOB_STARTED', id, logic, input });
        return actor.getSnapshot().children[id] as AnyActorRef | undefined;
      },
      end: (id) => actor.send({ type: 'JOB_ENDED', id }),
    },
  });
  actor.start();
  // Circuit open/closed and backoffs, once each, in the log.
  for (const p of config.peers) {
    for (const slot of slotsOf(p)) {
      const ref = actor.system.get(peerId(slot)) as PeerActorRef | undefined;
      if (ref) logPeerSignals(ref, log.child({ actor: 'peer' }));
    }
  }
  // Series/studies a restart interrupted resume their countdown (or fire now if it is past).
  completion.resume();
  // Prefetch jobs a restart interrupted carry on.
  prefetch.resume();
  // Deliveries to storage commitment peers are followed before any goes out; requests a restart left without report are asked again.
  await commitmentScu.start();
  // Whatever was queued before a restart goes out again.
  wake(config.peers.filter((p) => queue.depth(p.name).pending > 0).map((p) => p.name));
  // Requests a restart interrupted are decided and reported.
  commitment.start();
  // Retention keeps what a completion group or a storage commitment request still needs.
  const held = { holds: (sop: string) => completion.holds(sop) || commitment.holds(sop) || commitmentScu.holds(sop), prune: (keepMs: number) => completion.prune(keepMs) };
  const stopRetention = startRetention(spool, queue, config.routing.retentionHours * 3600_000, log.child({ actor: 'retention' }), undefined, held);
  const listeners: RunningListener[] = [];
  const ports = new Map<string, number>();
  // Q/R SCP: upstream associations within each archive's maxAssociations, across every listener.
  const peersByName = new Map(config.peers.map((p) => [p.name, p]));
  const qrSlots = new AssociationSlots((name) => peersByName.get(name)?.maxAssociations ?? 1, gates);
  const stored = new StoredInstances();
  // Retrieve-through jobs are children of the root while they run, like prefetch and completion jobs.
  const qrJobs = {
    start: (id: string, logic: AnyActorLogic, input: unknown) => {
      actor.send({ type: 'JOB_STARTED', id, logic, input });
      return actor.getSnapshot().children[id] as AnyActorRef | undefined;
    },
    end: (id: string) => actor.send({ type: 'JOB_ENDED', id }),
  };
  // Retrieve-through (and every C-GET of what the router does not hold) waits for instances stored here.
  const retrieveThrough = config.listeners.some((l) => l.queryRetrieve);
  try {
    for (const l of config.listeners) {
      const ref = actor.system.get(listenerId(l.name)) as ListenerActorRef;
      const listener = await startListener(
        {
          name: l.name,
          policy: acceptorPolicy(l),
          idleTimeoutMs: l.timeouts.idleSeconds * 1000,
          dimseTimeoutMs: l.timeouts.dimseSeconds * 1000,
          ref,
          spool,
          routing,
          events,
          logger: log,
          ...(l.tls ? { tls: { aeTitleBindings: l.tls.aeTitleBindings } } : {}),
          ...(l.queryRetrieve ? { qr: { config: l.queryRetrieve, spool, peers: peersByName, slots: qrSlots, stored, jobs: qrJobs, logger: log.child({ actor: 'qr-scp' }) } } : {}),
          // Retrieve-through moves instances into the router, on whichever listener the archive reaches.
          ...(retrieveThrough ? { onStored: (i: StoredInstance) => stored.notify(i) } : {}),
          ...(l.storageCommitment?.enabled ? { commitment } : {}),
          // Reports from storage commitment peers come to any listener (the peer in SCP role).
          ...(commitmentScu.enabled ? { commitmentScu } : {}),
        },
        {
          bind: l.bind, port: l.port, allowedSources: l.allowedSources, rateLimit: l.rateLimit,
          ...(l.tls ? { tls: { material: tls.listener(l.name)!, requireClientCert: l.tls.requireClientCert, handshakeTimeoutMs: l.tls.handshakeSeconds * 1000 } } : {}),
        },
      );
      listeners.push(listener);
      ports.set(l.name, listener.port);
      actor.send({ type: 'LISTENER_READY', name: l.name });
    }
  } catch (err) {
    await Promise.all(listeners.map((s) => s.close(0)));
    tls.stop();
    actor.stop();
    rules.stop();
    prefetch.stop();
    completion.stop();
    await commitment.stop();
    await commitmentScu.stop();
    await stopRetention();
    await cluster?.stop();
    audit.close();
    await spool.close();
    throw err;
  }
  let stopped = false;
  return {
    actor,
    spool,
    queue,
    prefetch,
    completion,
    commitment,
    commitmentScu,
    rules,
    events,
    ...(cluster ? { cluster } : {}),
    associationParties: (id) => parties.get(id),
    ports,
    tlsCertificates: () => tls.certificates(),
    async stop(graceMs = 5000) {
      if (stopped) return;
      stopped = true;
      actor.send({ type: 'SHUTDOWN_REQUESTED', reason: 'stop requested' });
      // Peers first take no new item: one in flight finishes and its outcome is recorded, then they
      // release (within the same grace period as the listeners' associations).
      await Promise.all([...listeners.map((s) => s.close(graceMs)), drainPeers(actor, graceMs)]);
      rules.stop();
      tls.stop();
      const retentionStopped = stopRetention();
      const commitmentStopped = commitment.stop();
      prefetch.stop();
      completion.stop();
      // What the drain did not end in time is released now (an item cut in flight stays pending).
      await Promise.all([...forwarders.values()].map((f) => f.release().catch(() => {})));
      // A stopped peer machine does not stop the promise of its send or open: that goes on to record
      // its outcome and read the spool. It must end before LMDB closes: a read while lmdb-js is closing
      // arms a timer that throws "Attempt to reset an invalid read txn", uncaught, and kills the process.
      cluster?.stopClaims();
      await Promise.all([...forwarders.values()].map((f) => f.settled()));
      // An open that was under way may have left an association: released too.
      await Promise.all([...forwarders.values()].map((f) => f.release().catch(() => {})));
      // After the last delivery event: each one is recorded for its commitment before the spool closes.
      await commitmentScu.stop();
      await retentionStopped;
      await commitmentStopped;
      await cluster?.stop();
      actor.stop();
      audited.unsubscribe();
      audit.applicationActivity(false);
      await audit.flushed();
      audit.close();
      await spool.close();
      events.complete();
    },
  };
}
