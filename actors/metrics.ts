// Prometheus metrics fed from the actor system's inspection stream (no hooks in the machines): listener
// and peer counters are read as differences of their machines' context counters, DIMSE durations from
// a transaction machine's spawn to its final snapshot, bytes from the P-DATA PDUs an association
// machine receives (Evt10) and is asked to send (Evt9). Queue depths are read from LMDB at scrape time.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { OutboundQueue } from './outbound-queue.ts';

type ListenerCounts = { accepted: number; rejected: Record<string, number> };
type PeerCounts = { delivered: number; failed: number; deadLettered: number };

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

/** The wire length of a P-DATA-TF PDU: 6-byte header, and per PDV 4 length + 1 context + 1 control bytes. */
function pDataLength(pdu: { pdvs?: { data: Uint8Array }[] } | undefined): number {
  return 6 + (pdu?.pdvs ?? []).reduce((n, pdv) => n + 6 + pdv.data.length, 0);
}

export class RouterMetrics {
  readonly registry = new Registry();
  private queue: OutboundQueue | undefined;
  private peers: string[] = [];
  private activeAssociations: () => Map<string, number> = () => new Map();
  private readonly listenerSeen = new Map<string, ListenerCounts>();
  private readonly peerSeen = new Map<string, PeerCounts>();
  private readonly dimseStarted = new Map<string, number>();
  private readonly prefetchDone = new Set<string>();

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
    if (event.type === '@xstate.event') {
      if (machine !== 'association') return;
      const e = event.event as { type: string; pdu?: { pdvs?: { data: Uint8Array }[] } };
      const listener = parentOf(ref) ? listenerName(parentOf(ref)!.id) : undefined;
      if (!listener || machineIdOf(parentOf(ref)) !== 'listener') return; // SCU associations are not in this tree
      if (e.type === 'P_DATA_TF_RECEIVED') this.bytesIn.inc({ listener }, pDataLength(e.pdu));
      else if (e.type === 'P_DATA_REQUESTED') this.bytesOut.inc({ listener }, pDataLength(e.pdu));
      return;
    }
    if (event.type !== '@xstate.snapshot') return;
    const snapshot = event.snapshot as { status?: string; context?: Record<string, unknown>; output?: unknown; value?: unknown };
    if (machine === 'listener') this.listenerCounts(ref.id, snapshot.context as unknown as ListenerCounts);
    else if (machine === 'peer') this.peerCounts(ref.id, snapshot.context as unknown as PeerCounts);
    else if (machine && /prefetch/i.test(machine) && snapshot.status === 'done' && !this.prefetchDone.has(ref.sessionId)) {
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

  private peerCounts(id: string, c: PeerCounts | undefined): void {
    if (!c) return;
    const peer = peerName(id);
    const seen = this.peerSeen.get(id) ?? { delivered: 0, failed: 0, deadLettered: 0 };
    if (c.delivered > seen.delivered) this.instancesForwarded.inc({ peer }, c.delivered - seen.delivered);
    // `failed` counts every failed try; the dead ones among them are counted apart.
    const dead = Math.max(0, c.deadLettered - seen.deadLettered);
    const failed = Math.max(0, c.failed - seen.failed);
    if (dead > 0) this.instancesForwardFailed.inc({ peer, outcome: 'dead' }, dead);
    if (failed - dead > 0) this.instancesForwardFailed.inc({ peer, outcome: 'retry' }, failed - dead);
    this.peerSeen.set(id, { delivered: c.delivered, failed: c.failed, deadLettered: c.deadLettered });
  }

  private dimseFinished(ref: AnyActorRef, snapshot: { status?: string; context?: Record<string, unknown>; output?: unknown }): void {
    const started = this.dimseStarted.get(ref.sessionId)!;
    this.dimseStarted.delete(ref.sessionId);
    const service = machineIdOf(ref) ?? 'unknown';
    this.dimseSeconds.observe({ service }, (performance.now() - started) / 1000);
    if (service !== 'cStoreScp') return;
    const listener = listenerName(parentOf(parentOf(ref))?.id);
    const status = (snapshot.output as { status?: number } | undefined)?.status ?? (snapshot.context?.status as number | undefined);
    // Success (0000) and warnings (0001, Bxxx) are acknowledged: the instance is stored (PS3.4 B.2.3).
    const stored = status !== undefined && (status === 0 || status === 1 || (status & 0xf000) === 0xb000);
    (stored ? this.instancesReceived : this.instancesRefused).inc({ listener });
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
