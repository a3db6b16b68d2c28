// What the console remembers from the domain events (issue 14): the rates for the charts, the
// rejections of the last hour, each peer's deliveries and failures of the last hour, and the last
// studies received with what happened to them per destination. Bounded memory; everything else the
// console shows is read from the router when asked (actors/observe/console-view.ts).
import type { Subscription } from 'rxjs';
import type { AssociationRejected, DomainEvent, DomainEvents } from './domain-events.ts';
import { Rates } from './rates.ts';

const HOUR_MS = 3600_000;
const MAX_REJECTIONS = 2000;
const MAX_OUTCOMES = 20_000;
export const RECENT_STUDIES = 20;

export type PeerTally = { queued: number; held: number; skipped: number; delivered: number; retried: number; dead: number };

export type StudySeen = {
  studyInstanceUid: string;
  modalities: Set<string>;
  instances: number;
  bytes: number;
  callingAes: Set<string>;
  addresses: Set<string>;
  patientId?: string;
  patientName?: string;
  firstAt: number;
  lastAt: number;
  /** What the events said per destination; the queue's own view is added when shown. */
  peers: Map<string, PeerTally>;
};

const tally = (): PeerTally => ({ queued: 0, held: 0, skipped: 0, delivered: 0, retried: 0, dead: 0 });

export class ConsoleModel {
  readonly rates = new Rates();
  private readonly rejections: AssociationRejected[] = [];
  /** Times of each peer's outcomes, oldest first, pruned to the last hour when read. */
  private readonly outcomes = new Map<string, { delivered: number[]; failed: number[] }>();
  /** The last studies received, the most recent last (a Map keeps insertion order). */
  private readonly studies = new Map<string, StudySeen>();

  subscribe(events: DomainEvents): Subscription {
    return events.all$.subscribe((e) => {
      try {
        this.observe(e);
      } catch {
        // The console is a window on the router, never a reason for it to fail.
      }
    });
  }

  observe(e: DomainEvent): void {
    switch (e.type) {
      case 'instance-stored': {
        this.rates.add(e.at, 'in', e.bytes);
        let s = this.studies.get(e.studyInstanceUid);
        if (s) this.studies.delete(e.studyInstanceUid); // re-inserted: most recent last
        else s = { studyInstanceUid: e.studyInstanceUid, modalities: new Set(), instances: 0, bytes: 0, callingAes: new Set(), addresses: new Set(), firstAt: e.at, lastAt: e.at, peers: new Map() };
        s.instances++;
        s.bytes += e.bytes;
        s.lastAt = e.at;
        if (e.modality) s.modalities.add(e.modality);
        s.callingAes.add(e.callingAe);
        s.addresses.add(e.address.replace(/:\d+$/, ''));
        s.patientId ??= e.patientId;
        s.patientName ??= e.patientName;
        for (const p of e.queued) this.tallyOf(s, p).queued++;
        for (const p of e.held) this.tallyOf(s, p).held++;
        for (const p of e.skipped) this.tallyOf(s, p).skipped++;
        this.studies.set(e.studyInstanceUid, s);
        if (this.studies.size > RECENT_STUDIES) this.studies.delete(this.studies.keys().next().value!);
        return;
      }
      case 'instance-forwarded': {
        this.rates.add(e.at, 'out', e.bytes);
        this.outcomesOf(e.peer).delivered.push(e.at);
        const s = this.studies.get(e.studyInstanceUid);
        if (s) this.tallyOf(s, e.peer).delivered++;
        return;
      }
      case 'forward-failed': {
        this.outcomesOf(e.peer).failed.push(e.at);
        const s = this.studies.get(e.studyInstanceUid);
        if (s) this.tallyOf(s, e.peer)[e.outcome === 'dead' ? 'dead' : 'retried']++;
        return;
      }
      case 'association-rejected':
        this.rejections.push(e);
        if (this.rejections.length > MAX_REJECTIONS) this.rejections.shift();
        return;
      default:
    }
  }

  /** Rejections of the last hour, the most recent first. */
  rejectionsLastHour(now = Date.now()): AssociationRejected[] {
    while (this.rejections.length > 0 && this.rejections[0].at < now - HOUR_MS) this.rejections.shift();
    return [...this.rejections].reverse();
  }

  /** Deliveries and failed tries of a peer in the last hour. */
  peerLastHour(peer: string, now = Date.now()): { delivered: number; failed: number } {
    const o = this.outcomes.get(peer);
    if (!o) return { delivered: 0, failed: 0 };
    const since = now - HOUR_MS;
    for (const list of [o.delivered, o.failed]) {
      const drop = list.findIndex((t) => t >= since);
      list.splice(0, drop === -1 ? list.length : drop);
    }
    return { delivered: o.delivered.length, failed: o.failed.length };
  }

  /** The last studies received, the most recent first. */
  recentStudies(): StudySeen[] {
    return [...this.studies.values()].reverse();
  }

  private tallyOf(s: StudySeen, peer: string): PeerTally {
    let t = s.peers.get(peer);
    if (!t) s.peers.set(peer, (t = tally()));
    return t;
  }

  private outcomesOf(peer: string) {
    let o = this.outcomes.get(peer);
    if (!o) this.outcomes.set(peer, (o = { delivered: [], failed: [] }));
    for (const list of [o.delivered, o.failed]) if (list.length > MAX_OUTCOMES) list.splice(0, list.length - MAX_OUTCOMES);
    return o;
  }
}
