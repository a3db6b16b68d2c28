// Prometheus metrics fed from the actor system's inspection stream (no hooks in the machines): listener
// and peer counters are read as differences of their machines' context counters, DIMSE durations from
// a transaction machine's spawn to its final snapshot, P-DATA bytes from the `traffic` counters of each
// association (counted by its socket actor: P-DATA is no event in a data-transfer state), read at each
// of its snapshots and at scrape time. Queue depths are read from LMDB at scrape time.
// Outbound associations are the 'association' children of the peer machines: their bytes, C-STORE
// round trips, openings (Sta5 → Sta6) and failures (the peer's associationFailures, with a reason)
// have metrics of their own (dicom_router_peer_*), so the inbound series keep their labels.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { AssociationTraffic } from '../../machines/association.machine.ts';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import type { Subscription } from 'rxjs';
import type { DomainEvents } from './domain-events.ts';

type ListenerCounts = { accepted: number; rejected: Record<string, number> };
type PeerCounts = { delivered: number; failed: number; deadLettered: number; associationFailures?: number; lastError?: string };

/** DIMSE request command fields (PS3.7 E.1) → service names: the one label vocabulary of the DIMSE histograms. */
const SERVICE: Record<number, string> = { 0x0001: 'C-STORE', 0x0010: 'C-GET', 0x0020: 'C-FIND', 0x0021: 'C-MOVE', 0x0030: 'C-ECHO' };

/** Why an outbound association could not be opened, from the error the forwarder gave the peer machine. */
export function failureReason(error: string | undefined): string {
  const e = error ?? '';
  if (/rejected-permanent/.test(e)) return 'rejected-permanent';
  if (/rejected-transient/.test(e)) return 'rejected-transient';
  if (/ECONNREFUSED/.test(e)) return 'connection-refused';
  if (/ETIMEDOUT|timed out|timeout|not completed after/i.test(e)) return 'timeout';
  if (/TLS|certificate|handshake|SSL/i.test(e)) return 'tls';
  return 'other';
}

/** The machine id of an actor's logic ('listener', 'association', 'cStoreScp' …). */
export function machineIdOf(ref: AnyActorRef | undefined): string | undefined {
  return (ref as { logic?: { config?: { id?: string } } } | undefined)?.logic?.config?.id;
}

export function parentOf(ref: AnyActorRef | undefined): AnyActorRef | undefined {
  return (ref as { _parent?: AnyActorRef } | undefined)?._parent;
}

/** 'listener:main' → 'main', 'peer:PACS#2' → 'PACS'. */
const listenerName = (id: string | undefined) => (id ?? '').replace(/^listener:/, '');
const peerName = (id: string) => id.replace(/^peer:/, '').replace(/#\d+$/, '');
/** The top-level state of a snapshot value ('connecting', {connected: 'sending'} → 'connected'). */
const topState = (value: unknown) => (typeof value === 'string' ? value : value && typeof value === 'object' ? Object.keys(value)[0] : undefined);

/** An association whose traffic is counted: its counters, what was counted of them, and whose they are. */
type TrafficSeen = { traffic: AssociationTraffic; received: number; sent: number; owner: 'listener' | 'peer'; name: string };

export class RouterMetrics {
  readonly registry = new Registry();
  private queue: OutboundQueue | undefined;
  private peers: string[] = [];
  private activeAssociations: () => Map<string, number> = () => new Map();
  private readonly listenerSeen = new Map<string, ListenerCounts>();
  private readonly peerSeen = new Map<string, PeerCounts>();
  private readonly dimseStarted = new Map<string, number>();
  private readonly prefetchDone = new Set<string>();
  /** Last upper-layer state of each outbound association, and last top-level state of each peer slot. */
  private readonly outboundState = new Map<string, unknown>();
  private readonly peerState = new Map<string, string | undefined>();
  /** What was counted of each association's traffic, by its counters object (so nothing is counted twice). */
  private readonly trafficSeen = new WeakMap<AssociationTraffic, TrafficSeen>();
  /** Open associations, read again at scrape time. */
  private readonly liveTraffic = new Set<TrafficSeen>();

  readonly associationsAccepted = new Counter({ name: 'dicom_router_associations_accepted_total', help: 'Associations accepted, per listener', labelNames: ['listener'], registers: [this.registry] });
  readonly associationsRejected = new Counter({ name: 'dicom_router_associations_rejected_total', help: 'Associations rejected, per listener and reason', labelNames: ['listener', 'reason'], registers: [this.registry] });
  readonly instancesReceived = new Counter({ name: 'dicom_router_instances_received_total', help: 'Instances stored and acknowledged (C-STORE-RSP success or warning), per listener', labelNames: ['listener'], registers: [this.registry] });
  readonly instancesRefused = new Counter({ name: 'dicom_router_instances_refused_total', help: 'C-STORE requests answered with a failure or abandoned, per listener', labelNames: ['listener'], registers: [this.registry] });
  readonly instancesForwarded = new Counter({ name: 'dicom_router_instances_forwarded_total', help: 'Instances a peer confirmed, per peer', labelNames: ['peer'], registers: [this.registry] });
  readonly instancesForwardFailed = new Counter({ name: 'dicom_router_instances_forward_failed_total', help: 'Failed deliveries, per peer and outcome (retry: will be retried, dead: became a dead letter)', labelNames: ['peer', 'outcome'], registers: [this.registry] });
  readonly bytesIn = new Counter({ name: 'dicom_router_bytes_received_total', help: 'P-DATA-TF bytes received on listener associations', labelNames: ['listener'], registers: [this.registry] });
  readonly bytesOut = new Counter({ name: 'dicom_router_bytes_sent_total', help: 'P-DATA-TF bytes sent on listener associations', labelNames: ['listener'], registers: [this.registry] });
  readonly dimseSeconds = new Histogram({
    name: 'dicom_router_dimse_duration_seconds',
    help: 'DIMSE transaction time, from the request to the end of the response, per service',
    labelNames: ['service'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly peerBytesOut = new Counter({ name: 'dicom_router_peer_bytes_sent_total', help: 'P-DATA-TF bytes sent on outbound (forwarding) associations, per peer', labelNames: ['peer'], registers: [this.registry] });
  readonly peerBytesIn = new Counter({ name: 'dicom_router_peer_bytes_received_total', help: 'P-DATA-TF bytes received on outbound (forwarding) associations, per peer', labelNames: ['peer'], registers: [this.registry] });
  readonly peerDimseSeconds = new Histogram({
    name: 'dicom_router_peer_dimse_duration_seconds',
    help: 'Outbound DIMSE round trip, from the request (dataset included) to the end of the response, per peer and service',
    labelNames: ['peer', 'service'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly peerAssociationsOpened = new Counter({ name: 'dicom_router_peer_associations_opened_total', help: 'Outbound associations established, per peer', labelNames: ['peer'], registers: [this.registry] });
  readonly peerAssociationFailures = new Counter({
    name: 'dicom_router_peer_association_failures_total',
    help: 'Outbound associations that could not be opened (reason: rejected-permanent, rejected-transient, connection-refused, timeout, tls, other) or were lost while sending (lost), per peer',
    labelNames: ['peer', 'reason'],
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: 'dicom_router_connections_refused_total',
    help: 'Connections closed before any DICOM exchange, per listener and reason (source-address-not-allowed, rate-limit, tls-handshake); A-ASSOCIATE-RJ are dicom_router_associations_rejected_total',
    labelNames: ['listener', 'reason'],
    registers: [this.registry],
  });
  readonly prefetchJobs = new Counter({ name: 'dicom_router_prefetch_jobs_total', help: 'Prefetch jobs finished, per outcome', labelNames: ['outcome'], registers: [this.registry] });

  constructor() {
    const self = this;
    new Gauge({
      name: 'dicom_router_queue_depth', help: 'Pending outbound queue items, per peer', labelNames: ['peer'], registers: [this.registry],
      collect() {
        this.reset();
        for (const p of self.peers) this.set({ peer: p }, self.depth(p).pending);
      },
    });
    new Gauge({
      name: 'dicom_router_dead_letters', help: 'Dead-letter queue items, per peer', labelNames: ['peer'], registers: [this.registry],
      collect() {
        this.reset();
        for (const p of self.peers) this.set({ peer: p }, self.depth(p).dead);
      },
    });
    new Gauge({
      name: 'dicom_router_associations_active', help: 'Open associations, per listener', labelNames: ['listener'], registers: [this.registry],
      collect() {
        this.reset();
        for (const [l, n] of self.activeAssociations()) this.set({ listener: l }, n);
      },
    });
  }

  /** What is read at scrape time: the queue, the configured peers, and the open associations per listener. */
  attach(opts: { queue: OutboundQueue; peers: string[]; activeAssociations: () => Map<string, number> }): void {
    this.queue = opts.queue;
    this.peers = opts.peers;
    this.activeAssociations = opts.activeAssociations;
  }

  /** Counts from the router's domain events what the machines' counters do not hold. */
  subscribe(events: DomainEvents): Subscription {
    return events.of('association-rejected').subscribe((e) => {
      try {
        if (e.reason === 'source-address-not-allowed' || e.reason === 'rate-limit' || e.reason === 'tls-handshake') this.connectionsRefused.inc({ listener: e.listener, reason: e.reason });
      } catch {
        // Metrics never break the router.
      }
    });
  }

  private depth(peer: string): { pending: number; dead: number } {
    try {
      return this.queue?.depth(peer) ?? { pending: 0, dead: 0 };
    } catch {
      return { pending: 0, dead: 0 }; // the index is closed (shutting down)
    }
  }

  /** The inspection callback (XState `inspect`). Never throws: metrics must not break the system. */
  observe(event: InspectionEvent): void {
    try {
      this.handle(event);
    } catch {
      // A malformed snapshot is not worth a crash.
    }
  }

  private handle(event: InspectionEvent): void {
    const ref = event.actorRef as AnyActorRef;
    const machine = machineIdOf(ref);
    if (event.type === '@xstate.actor') {
      if (parentOf(ref) && machineIdOf(parentOf(ref)) === 'association') {
        // Transactions cut by a stopped association never report a final snapshot: bound the map.
        if (this.dimseStarted.size > 10_000) this.dimseStarted.clear();
        this.dimseStarted.set(ref.sessionId, performance.now());
      }
      return;
    }
    if (event.type !== '@xstate.snapshot') return;
    const snapshot = event.snapshot as { status?: string; context?: Record<string, unknown>; output?: unknown; value?: unknown };
    if (machine === 'listener') this.listenerCounts(ref.id, snapshot.context as unknown as ListenerCounts);
    else if (machine === 'peer') this.peerCounts(ref.id, snapshot.context as unknown as PeerCounts, topState(snapshot.value));
    else if (machine === 'association') {
      this.associationTraffic(ref, snapshot);
      if (machineIdOf(parentOf(ref)) === 'peer') this.outboundAssociation(ref, snapshot);
    } else if (machine && /prefetch/i.test(machine) && snapshot.status === 'done' && !this.prefetchDone.has(ref.sessionId)) {
      this.prefetchDone.add(ref.sessionId);
      const out = snapshot.output as { outcome?: string } | undefined;
      this.prefetchJobs.inc({ outcome: out?.outcome ?? String(snapshot.value) });
    }
    if (snapshot.status !== 'active' && this.dimseStarted.has(ref.sessionId)) this.dimseFinished(ref, snapshot);
  }

  private listenerCounts(id: string, c: ListenerCounts | undefined): void {
    if (!c) return;
    const listener = listenerName(id);
    const seen = this.listenerSeen.get(id) ?? { accepted: 0, rejected: {} };
    if (c.accepted > seen.accepted) this.associationsAccepted.inc({ listener }, c.accepted - seen.accepted);
    for (const [reason, n] of Object.entries(c.rejected ?? {})) {
      const before = seen.rejected[reason] ?? 0;
      if (n > before) this.associationsRejected.inc({ listener, reason }, n - before);
    }
    this.listenerSeen.set(id, { accepted: c.accepted, rejected: { ...c.rejected } });
  }

  /**
   * Counts what an association moved since it was last read. Its counters are read at each of its
   * snapshots (control events: a transaction starting or ending, release, close) and at scrape time,
   * so a long transfer shows while it runs; it is forgotten once its transport has closed (Sta1).
   */
  private associationTraffic(ref: AnyActorRef, snapshot: { status?: string; context?: Record<string, unknown>; value?: unknown }): void {
    const traffic = snapshot.context?.traffic as AssociationTraffic | undefined;
    if (!traffic) return;
    let seen = this.trafficSeen.get(traffic);
    if (!seen) {
      const owner = parentOf(ref);
      const ownerMachine = machineIdOf(owner);
      // Standalone SCU associations (the CLI tools, Q/R) are not in this tree.
      if (ownerMachine !== 'listener' && ownerMachine !== 'peer') return;
      if (snapshot.value === 'Sta1' && traffic.pdusReceived + traffic.pdusSent === 0) return; // not yet connected
      const name = ownerMachine === 'listener' ? listenerName(owner!.id) : peerName(owner!.id);
      seen = { traffic, received: 0, sent: 0, owner: ownerMachine, name };
      this.trafficSeen.set(traffic, seen);
    }
    this.countTrafficOf(seen);
    if (snapshot.status !== 'active' || snapshot.value === 'Sta1') this.liveTraffic.delete(seen);
    else {
      if (this.liveTraffic.size > 10_000) this.liveTraffic.clear(); // associations stopped without closing: bound the set
      this.liveTraffic.add(seen);
    }
  }

  private countTrafficOf(seen: TrafficSeen): void {
    const received = seen.traffic.pDataBytesReceived - seen.received;
    const sent = seen.traffic.pDataBytesSent - seen.sent;
    seen.received += received;
    seen.sent += sent;
    if (seen.owner === 'listener') {
      if (received > 0) this.bytesIn.inc({ listener: seen.name }, received);
      if (sent > 0) this.bytesOut.inc({ listener: seen.name }, sent);
    } else {
      if (received > 0) this.peerBytesIn.inc({ peer: seen.name }, received);
      if (sent > 0) this.peerBytesOut.inc({ peer: seen.name }, sent);
    }
  }

  private outboundAssociation(ref: AnyActorRef, snapshot: { status?: string; value?: unknown }): void {
    const before = this.outboundState.get(ref.sessionId);
    if (snapshot.value === 'Sta6' && before === 'Sta5') this.peerAssociationsOpened.inc({ peer: peerName(parentOf(ref)!.id) });
    if (snapshot.status !== 'active') this.outboundState.delete(ref.sessionId);
    else {
      if (this.outboundState.size > 10_000) this.outboundState.clear();
      this.outboundState.set(ref.sessionId, snapshot.value);
    }
  }

  private peerCounts(id: string, c: PeerCounts | undefined, state: string | undefined): void {
    if (!c) return;
    const peer = peerName(id);
    const stateBefore = this.peerState.get(id);
    this.peerState.set(id, state);
    const failures = (c.associationFailures ?? 0) - (this.peerSeen.get(id)?.associationFailures ?? 0);
    // Failing to open (from 'connecting') has a reason; failing while connected is a lost association.
    if (failures > 0) this.peerAssociationFailures.inc({ peer, reason: stateBefore === 'connected' ? 'lost' : failureReason(c.lastError) }, failures);
    const seen = this.peerSeen.get(id) ?? { delivered: 0, failed: 0, deadLettered: 0 };
    if (c.delivered > seen.delivered) this.instancesForwarded.inc({ peer }, c.delivered - seen.delivered);
    // `failed` counts every failed try; the dead ones among them are counted apart.
    const dead = Math.max(0, c.deadLettered - seen.deadLettered);
    const failed = Math.max(0, c.failed - seen.failed);
    if (dead > 0) this.instancesForwardFailed.inc({ peer, outcome: 'dead' }, dead);
    if (failed - dead > 0) this.instancesForwardFailed.inc({ peer, outcome: 'retry' }, failed - dead);
    this.peerSeen.set(id, { delivered: c.delivered, failed: c.failed, deadLettered: c.deadLettered, associationFailures: c.associationFailures ?? 0 });
  }

  private dimseFinished(ref: AnyActorRef, snapshot: { status?: string; context?: Record<string, unknown>; output?: unknown }): void {
    const started = this.dimseStarted.get(ref.sessionId)!;
    this.dimseStarted.delete(ref.sessionId);
    const seconds = (performance.now() - started) / 1000;
    const owner = parentOf(parentOf(ref));
    if (machineIdOf(owner) === 'peer') {
      const command = (snapshot.context?.command as { CommandField?: number } | undefined)?.CommandField;
      this.peerDimseSeconds.observe({ peer: peerName(owner!.id), service: SERVICE[command ?? -1] ?? 'unknown' }, seconds);
      return;
    }
    // One vocabulary inbound and outbound: the DIMSE service of the request (a refused request too).
    const command = (snapshot.context?.command as { CommandField?: number } | undefined)?.CommandField;
    const service = SERVICE[command ?? -1] ?? machineIdOf(ref) ?? 'unknown';
    this.dimseSeconds.observe({ service }, seconds);
    if (machineIdOf(ref) !== 'cStoreScp') return;
    const listener = listenerName(parentOf(parentOf(ref))?.id);
    const status = (snapshot.output as { status?: number } | undefined)?.status ?? (snapshot.context?.status as number | undefined);
    // Success (0000) and warnings (0001, Bxxx) are acknowledged: the instance is stored (PS3.4 B.2.3).
    const stored = status !== undefined && (status === 0 || status === 1 || (status & 0xf000) === 0xb000);
    (stored ? this.instancesReceived : this.instancesRefused).inc({ listener });
  }

  metrics(): Promise<string> {
    for (const seen of this.liveTraffic) this.countTrafficOf(seen);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
