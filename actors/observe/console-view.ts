// The console's front page as data (GET /api/console): at a glance (rates, associations open,
// rejections of the last hour by reason), each peer in words with its queue and dead letters, the
// recent studies per destination with their prefetch jobs, health (spool disk, rules in force, TLS
// certificates) and the alerts. Read from the router when asked; the rates and tallies come from the
// domain events (console-model.ts). Patient data is masked unless `showPhi`.
import { commitmentsView } from './console-commitments.ts';
import { statfsSync } from 'node:fs';
import type { AnyActorRef } from 'xstate';
import type { PeerConfig, RouterConfig } from '../../config/config.ts';
import { peerId } from '../../machines/router.machine.ts';
import { formatStatus } from '../../protocol/status.ts';
import type { QueueItem } from '../forward/outbound-queue.ts';
import type { RunningRouter } from '../router.ts';
import { slotsOf } from '../router.ts';
import { CERTIFICATE_ALERT_DAYS, DISK_ALERT_PERCENT } from './alerts.ts';
import type { Alert, AlertCondition } from './alerts.ts';
import type { ConsoleModel } from './console-model.ts';
import { MASK } from './inspector-model.ts';
import { peerInWords } from './peer-words.ts';
import { trueNextAttempt } from './next-attempt.ts';
import { retrievalsOf } from './console-retrievals.ts';
import type { PeerSlotSnapshot } from './peer-words.ts';

export type ConsoleDeps = {
  config: RouterConfig;
  router: RunningRouter;
  model: ConsoleModel;
  /** Open associations now, all listeners. */
  associationsOpen(): number;
  /** Dead letters of a peer now (may be cached: counting scans the peer's queue). */
  deadLetters(peer: string): number;
};

/**
 * Dead-letter counts for the alerts, read again at most every `maxAgeMs` (counting scans the queue,
 * and the alerts are evaluated every 2 s) and at once after `invalidate` (a dead letter made here, a
 * retry or purge through the API).
 */
export function cachedDeadLetters(router: RunningRouter, peers: string[], maxAgeMs = 15_000) {
  let cache: { at: number; counts: Map<string, number> } | undefined;
  return {
    count(peer: string): number {
      if (!cache || Date.now() - cache.at >= maxAgeMs) {
        const counts = new Map<string, number>();
        for (const p of peers) counts.set(p, safe(() => router.queue.depth(p).dead, 0));
        cache = { at: Date.now(), counts };
      }
      return cache.counts.get(peer) ?? 0;
    },
    invalidate(): void {
      cache = undefined;
    },
  };
}

const DEAD_SHOWN = 20;

type PeerScan = { pending: number; dead: number; oldest?: string; soonest?: QueueItem; lastDead: QueueItem[] };

export type DiskUsage = { path: string; totalBytes: number; usedBytes: number; freeBytes: number; usedPercent: number };

export function diskUsage(path: string): DiskUsage | undefined {
  try {
    const s = statfsSync(path);
    const used = (s.blocks - s.bfree) * s.bsize;
    const free = s.bavail * s.bsize;
    // As df computes it: the space root keeps in reserve is neither used nor free to us.
    return { path, totalBytes: s.blocks * s.bsize, usedBytes: used, freeBytes: free, usedPercent: used + free > 0 ? Math.round((used / (used + free)) * 1000) / 10 : 0 };
  } catch {
    return undefined;
  }
}

/** The peer machines' snapshots of one peer (one per association slot). */
export function peerSlots(root: AnyActorRef, peer: PeerConfig): PeerSlotSnapshot[] {
  const out: PeerSlotSnapshot[] = [];
  for (const slot of slotsOf(peer)) {
    const snap = (root.system.get(peerId(slot)) as AnyActorRef | undefined)?.getSnapshot() as { value?: unknown; context?: Record<string, unknown> } | undefined;
    if (!snap?.context) continue;
    const c = snap.context;
    out.push({
      state: statePath(snap.value),
      circuit: c.circuit as PeerSlotSnapshot['circuit'],
      consecutiveFailures: Number(c.consecutiveFailures ?? 0),
      circuitThreshold: Number(c.circuitThreshold ?? 0),
      ...(typeof c.lastError === 'string' ? { lastError: c.lastError } : {}),
      ...(typeof c.backoffUntil === 'string' ? { backoffUntil: c.backoffUntil } : {}),
    });
  }
  return out;
}

function statePath(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const [k, v] = Object.entries(value)[0] ?? [];
    return k === undefined ? '' : `${k}.${statePath(v)}`.replace(/\.$/, '');
  }
  return '';
}

/** Queue items of every peer, or none when the index is closed. */
function queueItems(router: RunningRouter, peer?: string): QueueItem[] {
  try {
    return router.queue.list(peer);
  } catch {
    return [];
  }
}

/** What is wrong now, for the alerts banner (actors/observe/alerts.ts). */
export function alertConditions(deps: ConsoleDeps, now = Date.now(), disk = diskUsage(deps.router.spool.dir)): AlertCondition[] {
  const { config, router } = deps;
  const root = router.actor as unknown as AnyActorRef;
  const out: AlertCondition[] = [];
  const stopped = safe(() => router.spool.ingestStopped, undefined);
  if (stopped) out.push({ kind: 'ingest-stopped', subject: router.spool.dir, message: `ingest stopped: ${stopped.reason}; every C-STORE is refused (A700) until the router is restarted, which replays what was acknowledged` });
  for (const p of config.peers) {
    const words = peerInWords(peerSlots(root, p), now);
    if (words.condition === 'circuit-open') out.push({ kind: 'circuit-open', subject: p.name, message: `${p.name}: ${words.words}` });
    const dead = deps.deadLetters(p.name);
    if (dead > 0) out.push({ kind: 'dead-letters', subject: p.name, message: `${p.name}: ${dead} dead letter${dead === 1 ? '' : 's'}` });
  }
  if (disk && disk.usedPercent > DISK_ALERT_PERCENT) out.push({ kind: 'disk-full', subject: disk.path, message: `spool disk ${disk.usedPercent} % used (above ${DISK_ALERT_PERCENT} %)` });
  for (const c of safe(() => router.tlsCertificates(), [])) {
    if (c.daysLeft < CERTIFICATE_ALERT_DAYS) {
      out.push({ kind: 'certificate-expiring', subject: `${c.owner} ${c.file}`, message: c.daysLeft < 0 ? `${c.owner}: certificate ${c.subject} expired on ${c.notAfter.slice(0, 10)}` : `${c.owner}: certificate ${c.subject} expires in ${Math.floor(c.daysLeft)} days (${c.notAfter.slice(0, 10)})` });
    }
  }
  const refused = router.rules.lastError;
  if (refused) out.push({ kind: 'rules-refused', subject: router.rules.dir, message: `rule file refused (the previous rules stay in force): ${firstLine(refused)}` });
  return out;
}

const firstLine = (s: string) => s.split('\n')[0];

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

export function consoleView(deps: ConsoleDeps, alerts: Alert[], opts: { showPhi: boolean }, now = Date.now()) {
  const { config, router, model } = deps;
  const root = router.actor as unknown as AnyActorRef;
  const hour = model.rates.lastHour(now);
  const rejections = model.rejectionsLastHour(now);
  const byReason: Record<string, number> = {};
  for (const r of rejections) byReason[r.reason] = (byReason[r.reason] ?? 0) + 1;
  const recent = model.recentStudies();
  // One pass over the queues (they may be deep): per peer, and per recent study and peer.
  const byPeer = new Map<string, PeerScan>();
  const byStudy = new Map<string, Map<string, { waiting: number; dead: number }>>(recent.map((s) => [s.studyInstanceUid, new Map()]));
  for (const i of queueItems(router)) {
    let p = byPeer.get(i.peer);
    if (!p) byPeer.set(i.peer, (p = { pending: 0, dead: 0, lastDead: [] }));
    if (i.state === 'pending') {
      p.pending++;
      if (p.oldest === undefined || i.enqueuedAt < p.oldest) p.oldest = i.enqueuedAt;
      if (p.soonest === undefined || i.nextAttemptAt < p.soonest.nextAttemptAt) p.soonest = i;
    } else {
      p.dead++;
      p.lastDead.push(i);
      if (p.lastDead.length > DEAD_SHOWN) p.lastDead.shift();
    }
    const study = byStudy.get(i.studyInstanceUid);
    if (study) {
      let c = study.get(i.peer);
      if (!c) study.set(i.peer, (c = { waiting: 0, dead: 0 }));
      c[i.state === 'pending' ? 'waiting' : 'dead']++;
    }
  }

  const peers = config.peers.map((p) => {
    const scan = byPeer.get(p.name) ?? { pending: 0, dead: 0, lastDead: [] };
    const oldest = scan.oldest;
    const slots = peerSlots(root, p);
    const next = scan.soonest && trueNextAttempt(scan.soonest, slots, now);
    const words = peerInWords(slots, now);
    return {
      name: p.name,
      aeTitle: p.aeTitle,
      address: `${p.host}:${p.port}`,
      condition: words.condition,
      words: words.words,
      queue: { pending: scan.pending, dead: scan.dead, oldestWaitingSeconds: oldest ? Math.max(0, Math.round((now - Date.parse(oldest)) / 1000)) : null, nextAttemptAt: next ? (next.dueNow ? 'now' : next.at) : null },
      lastHour: model.peerLastHour(p.name, now),
      deadLetters: [...scan.lastDead].reverse().map((i) => ({
        id: i.id, sopInstanceUid: i.sopInstanceUid, attempts: i.attempts, status: i.lastStatus !== undefined ? formatStatus(i.lastStatus) : null, reason: i.deadReason ?? i.lastError ?? '',
      })),
    };
  });

  const prefetch = prefetchByStudy(router, new Set(recent.map((s) => s.studyInstanceUid)));
  const waitingStudies = new Set(safe(() => router.completion.waiting(), []).map((g) => g.studyInstanceUid));
  const studies = recent.map((s) => {
    const queued = byStudy.get(s.studyInstanceUid) ?? new Map<string, { waiting: number; dead: number }>();
    const destinations = new Set([...s.peers.keys(), ...queued.keys()]);
    return {
      studyInstanceUid: s.studyInstanceUid,
      modalities: [...s.modalities],
      instances: s.instances,
      bytes: s.bytes,
      callingAes: [...s.callingAes],
      addresses: [...s.addresses],
      patient: opts.showPhi ? { id: s.patientId ?? '', name: s.patientName ?? '' } : { id: MASK, name: MASK },
      firstAt: new Date(s.firstAt).toISOString(),
      lastAt: new Date(s.lastAt).toISOString(),
      destinations: [...destinations].sort().map((peer) => {
        const t = s.peers.get(peer);
        const q = queued.get(peer);
        return {
          peer,
          delivered: t?.delivered ?? 0,
          waiting: q?.waiting ?? 0,
          held: waitingStudies.has(s.studyInstanceUid) ? t?.held ?? 0 : 0,
          skippedDuplicate: t?.skipped ?? 0,
          dead: q?.dead ?? 0,
        };
      }),
      prefetch: prefetch.get(s.studyInstanceUid) ?? [],
    };
  });

  const disk = diskUsage(router.spool.dir);
  const bytesPerHour = hour.bytesIn;
  const retentionHours = config.routing.retentionHours;
  const set = router.rules.current;
  return {
    at: new Date(now).toISOString(),
    alerts,
    glance: {
      rates: model.rates.series(now),
      lastHour: hour,
      associationsOpen: deps.associationsOpen(),
      rejections: { total: rejections.length, byReason, recent: rejections.slice(0, 50).map((r) => ({ at: new Date(r.at).toISOString(), listener: r.listener, reason: r.reason, callingAe: r.callingAe, calledAe: r.calledAe, address: r.address, detail: r.detail })) },
    },
    peers,
    studies,
    commitments: safe(() => commitmentsView(router), { received: [], sent: [] }),
    retrievals: safe(() => retrievalsOf(root, opts.showPhi), []),
    // A cluster node (issue 17): nodes, leases, shared queue depths; degraded while PostgreSQL is unreachable.
    cluster: router.cluster ? safe(() => router.cluster?.lastStatus() ?? null, null) : null,
    health: {
      spool: {
        dir: router.spool.dir,
        instances: safe(() => router.spool.count(), null),
        disk: disk ?? null,
        retentionHours,
        // At the last hour's intake, what retention holds once it is steady, and how long the free space lasts.
        forecast: {
          bytesPerHour,
          retainedBytes: bytesPerHour * retentionHours,
          fullInHours: bytesPerHour > 0 && disk ? Math.round((disk.freeBytes / bytesPerHour) * 10) / 10 : null,
          fitsRetention: disk ? bytesPerHour * retentionHours <= disk.freeBytes : null,
        },
      },
      rules: {
        dir: router.rules.dir,
        loadedAt: set.loadedAt,
        inForce: set.rules.map((r) => ({ name: r.name, file: r.file, priority: r.priority })),
        refused: router.rules.lastError ?? null,
      },
      certificates: safe(() => router.tlsCertificates(), []).map((c) => ({ ...c, daysLeft: Math.floor(c.daysLeft) })),
    },
  };
}

type PrefetchShown = { id: string; rule: string; state: string; archive: string; destination: string; priors: { studyInstanceUid: string; state: string; modalities: string[] }[]; reason?: string };

/** Prefetch jobs the given studies triggered, with the priors they moved, by study. */
function prefetchByStudy(router: RunningRouter, studies: Set<string>): Map<string, PrefetchShown[]> {
  const jobs = new Map<string, PrefetchShown[]>();
  if (studies.size === 0) return jobs;
  try {
    for (const { value: j } of router.prefetch.jobs.getRange()) {
      if (!studies.has(j.triggeringStudy)) continue;
      if (!jobs.has(j.triggeringStudy)) jobs.set(j.triggeringStudy, []);
      jobs.get(j.triggeringStudy)!.push({
        id: j.id, rule: j.rule, state: j.state, archive: j.action.archive, destination: j.action.destination,
        priors: (j.priors ?? []).map((p) => ({ studyInstanceUid: p.studyInstanceUid, state: p.state, modalities: p.modalities })),
        ...(j.reason ? { reason: j.reason } : {}),
      });
    }
  } catch {
    // The index is closed (shutting down).
  }
  return jobs;
}
