// The durable outbound queue: one FIFO per peer in sub-databases of the spool's LMDB environment, so a
// forwarding decision commits in the same transaction as the instance row (enqueue() inside the spool
// commit's `extra`) and survives restarts. Sub-databases:
//   queue         [peer, seq] → QueueItem       (seq: a global counter, so keys sort by peer, then arrival)
//   queue-seq     'next' → last seq handed out
//   queue-by-sop  sopInstanceUid → item ids    (dupSort; retention asks outstanding(sop) per instance)
//   deliveries    [sopInstanceUid, peer] → Delivery (what each destination confirmed)
//   queue-skipped [peer, seq] → SkippedDuplicate (instances not queued again: the peer's `duplicates` policy)
// An item id is `${peer}:${seq, 12 digits}`: it names its key, so lookups by id need no index and work
// from another process (the CLI), and ids of one peer sort in arrival order.
// Ordering (issue 3: "instances of one series to one peer leave in the order received"): pending() never
// returns an item while an earlier pending item of the same series for that peer is not yet due (backing
// off) or in flight. Dead letters do not hold their series back: they leave only when an operator retries.
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { DuplicatePolicy } from '../../config/config.ts';
import { duplicateVerdict, fingerprintOf } from './duplicates.ts';
import type { DuplicateVerdict, SkippedDuplicate } from './duplicates.ts';
import type { InstanceRecord, Spool } from '../ingest/spool.ts';
import { backoffMs } from './retry-policy.ts';
import type { RetryPolicy } from './retry-policy.ts';

export type QueueItem = {
  /** `${peer}:${seq}`: unique, sorts in arrival order per peer. */
  id: string;
  peer: string;
  failover?: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  /** Relative to the spool directory. */
  path: string;
  /** Opaque here: the dataset rewriting applied when sending. */
  modifications: unknown[];
  rule: string;
  /** ISO 8601. */
  enqueuedAt: string;
  attempts: number;
  /** ISO 8601; not sent before. */
  nextAttemptAt: string;
  state: 'pending' | 'dead';
  lastStatus?: number;
  lastError?: string;
  deadReason?: string;
  /** SHA-256 of the stored dataset bytes (InstanceRecord.sha256), when known. */
  datasetSha256?: string;
  /** What the peer receives: fingerprintOf(datasetSha256, modifications); set by enqueue() when the dataset hash is known. */
  fingerprint?: string;
};

export { fingerprintOf, isSkipped } from './duplicates.ts';
export type { SkippedDuplicate } from './duplicates.ts';

export type NewQueueItem = Omit<QueueItem, 'id' | 'attempts' | 'nextAttemptAt' | 'state' | 'enqueuedAt' | 'fingerprint'>;

/** The queue item that sends the indexed instance `record` to one forward target of `rule`. */
export function queueItemFor(target: { peer: string; failover?: string; modifications: unknown[] }, rule: string, record: InstanceRecord): NewQueueItem {
  return {
    peer: target.peer, ...(target.failover ? { failover: target.failover } : {}), rule, modifications: target.modifications,
    sopInstanceUid: record.sopInstanceUid, seriesInstanceUid: record.seriesInstanceUid, studyInstanceUid: record.studyInstanceUid,
    sopClassUid: record.sopClassUid, transferSyntaxUid: record.transferSyntaxUid, path: record.path,
    // In hand already: enqueue() need not read the instance row again for the fingerprint.
    ...(record.sha256 !== undefined ? { datasetSha256: record.sha256 } : {}),
  };
}

/** A confirmed delivery of one instance to one peer (the last one, if it was sent more than once).
 *  statusOverride: the peer's status counted as delivered by peers[].statusOverrides, e.g. 'A702 → delivered'. */
export type Delivery = { sopInstanceUid: string; peer: string; status: number; at: string; id: string; rule: string; count: number; fingerprint?: string; statusOverride?: string };

/** How often a peer's status was read through peers[].statusOverrides (shown by `queue ls` and the console). */
export type OverrideApplied = { peer: string; status: string; outcome: string; count: number; lastAt: string; lastSopInstanceUid: string };

/** What enqueue() did: queued the item, or recorded a skipped duplicate. Both carry id, peer, sopInstanceUid, rule. */
export type EnqueueResult = QueueItem | SkippedDuplicate;

export type OutboundQueueOptions = {
  /** Each peer's duplicates policy; peers not named are 'always' (every routed instance is queued). */
  duplicates?: Readonly<Record<string, DuplicatePolicy>>;
  /** Skipped duplicates are logged here at info (UIDs only, no patient data). */
  logger?: Logger;
};


type Key = [string, number];

const SEQ_DIGITS = 12;
const LAST_SEQ = Number.MAX_SAFE_INTEGER;

function formatId(peer: string, seq: number): string {
  return `${peer}:${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

function parseId(id: string): Key | undefined {
  const m = /^([\s\S]*):(\d+)$/.exec(id);
  return m ? [m[1], Number(m[2])] : undefined;
}

export class OutboundQueue {
  #root: RootDatabase;
  #items: Database<QueueItem, Key>;
  #seq: Database<number, string>;
  #bySop: Database<string, string>;
  #deliveries: Database<Delivery, [string, string]>;
  #skipped: Database<SkippedDuplicate, Key>;
  #overrides: Database<OverrideApplied, [string, string]>;
  #spool: Spool;
  #policies: Readonly<Record<string, DuplicatePolicy>>;
  #log: Logger | undefined;

  private constructor(spool: Spool, opts: OutboundQueueOptions) {
    const root = spool.db;
    this.#root = root;
    this.#spool = spool;
    this.#policies = opts.duplicates ?? {};
    this.#log = opts.logger;
    this.#skipped = root.openDB<SkippedDuplicate, Key>({ name: 'queue-skipped' });
    spool.onReplaced((previous, record) => this.#followReplacement(previous, record));
    this.#items = root.openDB<QueueItem, Key>({ name: 'queue' });
    this.#seq = root.openDB<number, string>({ name: 'queue-seq' });
    this.#bySop = root.openDB<string, string>({ name: 'queue-by-sop', dupSort: true, encoding: 'ordered-binary' });
    this.#deliveries = root.openDB<Delivery, [string, string]>({ name: 'deliveries' });
    this.#overrides = root.openDB<OverrideApplied, [string, string]>({ name: 'status-overrides' });
  }

  static open(spool: Spool, opts: OutboundQueueOptions = {}): OutboundQueue {
    return new OutboundQueue(spool, opts);
  }

  /** The peer's duplicates policy ('always' unless configured). */
  policyOf(peer: string): DuplicatePolicy {
    return this.#policies[peer] ?? 'always';
  }

  /**
   * Append an item to its peer's queue, due now, unless the peer's duplicates policy says the instance is
   * a duplicate for it: then a SkippedDuplicate is recorded instead (and returned). Synchronous writes: it
   * must run inside an LMDB write transaction (the spool commit's `extra`, or add()), so the item (or the
   * skip) commits with whatever else that transaction writes, e.g. the instance row, or not at all.
   */
  enqueue(item: NewQueueItem, now: Date = new Date()): EnqueueResult {
    try {
      this.#root.getWriteTxnId();
    } catch {
      throw new Error('OutboundQueue.enqueue() must run inside a write transaction (a spool commit extra, or use add())');
    }
    const datasetSha256 = item.datasetSha256 ?? this.#storedSha256(item);
    const fingerprint = datasetSha256 === undefined ? undefined : fingerprintOf(datasetSha256, item.modifications);
    const seq = this.#nextSeq();
    const at = now.toISOString();
    const skip = this.#duplicate(item, fingerprint);
    if (skip) {
      const record: SkippedDuplicate = {
        skipped: true, id: formatId(item.peer, seq), peer: item.peer, sopInstanceUid: item.sopInstanceUid,
        seriesInstanceUid: item.seriesInstanceUid, studyInstanceUid: item.studyInstanceUid, rule: item.rule,
        ...skip, ...(fingerprint !== undefined ? { fingerprint } : {}), at,
      };
      this.#skipped.put([item.peer, seq], record);
      this.#log?.info({ peer: item.peer, sopInstanceUid: item.sopInstanceUid, rule: item.rule, policy: record.policy, why: record.why }, 'duplicate not queued again');
      return record;
    }
    return this.#put(item, seq, at, { ...(datasetSha256 !== undefined ? { datasetSha256 } : {}), ...(fingerprint !== undefined ? { fingerprint } : {}) });
  }

  /** The queue's next sequence number, taken (inside a write transaction). */
  #nextSeq(): number {
    const seq = (this.#seq.get('next') ?? 0) + 1;
    this.#seq.put('next', seq);
    return seq;
  }

  /** The item as `seq` of its peer's queue, due at `at` (pending unless `more` says otherwise), and its by-SOP entry. */
  #put(item: NewQueueItem, seq: number, at: string, more: Partial<QueueItem>): QueueItem {
    const full: QueueItem = { ...item, id: formatId(item.peer, seq), enqueuedAt: at, attempts: 0, nextAttemptAt: at, state: 'pending', ...more };
    this.#items.put([item.peer, seq], full);
    this.#bySop.put(item.sopInstanceUid, full.id);
    return full;
  }

  /** enqueue() in a transaction of its own, for decisions made outside a spool commit. */
  add(item: NewQueueItem, now?: Date): Promise<EnqueueResult> {
    return this.#root.transaction(() => this.enqueue(item, now));
  }

  /**
   * A dead letter for an instance the peer already has had (e.g. its storage commitment failed,
   * actors/jobs/commitment-scu.ts): `queue retry` sends it again. Not subject to the duplicates
   * policy (resending is the point); it keeps the file from retention like any item.
   */
  async addDeadLetter(item: NewQueueItem, reason: string, now: Date = new Date()): Promise<QueueItem> {
    return this.#root.transaction(() => this.#put(item, this.#nextSeq(), now.toISOString(), { state: 'dead', lastError: reason, deadReason: reason }));
  }

  /** Skipped duplicates of a peer (or all), oldest first; `limit` keeps the most recent ones. */
  skipped(peer?: string, opts: { limit?: number } = {}): SkippedDuplicate[] {
    const range = peer === undefined ? {} : { start: [peer, 0] as Key, end: [peer, LAST_SEQ] as Key };
    const all = Array.from(this.#skipped.getRange(range), ({ value }) => value);
    return opts.limit === undefined ? all : all.slice(Math.max(0, all.length - opts.limit));
  }

  skippedCount(peer: string): number {
    return this.#skipped.getKeysCount({ start: [peer, 0], end: [peer, LAST_SEQ] });
  }

  /** Forget skip records older than `before` (retention). */
  async pruneSkipped(before: Date): Promise<number> {
    const cutoff = before.toISOString();
    const old = Array.from(this.#skipped.getRange({}), ({ key, value }) => ({ key, value })).filter(({ value }) => value.at < cutoff);
    if (old.length === 0) return 0;
    await this.#root.transaction(() => {
      for (const { key } of old) this.#skipped.remove(key);
    });
    return old.length;
  }

  /** The peer's policy applied to what it has (its latest pending item, its last delivery): see duplicateVerdict. */
  #duplicate(item: NewQueueItem, fingerprint: string | undefined): DuplicateVerdict | undefined {
    const policy = this.policyOf(item.peer);
    if (policy === 'always') return undefined;
    return duplicateVerdict(policy, {
      pending: this.#latestPending(item.peer, item.sopInstanceUid)?.value,
      delivery: this.#deliveries.get([item.sopInstanceUid, item.peer]),
      fingerprint,
    });
  }

  /** The peer's most recent pending item for this instance (dead letters do not count: nothing was delivered). */
  #latestPending(peer: string, sopInstanceUid: string): { key: Key; value: QueueItem } | undefined {
    let latest: { key: Key; value: QueueItem } | undefined;
    for (const id of this.#bySop.getValues(sopInstanceUid)) {
      const key = parseId(id);
      if (!key || key[0] !== peer) continue;
      const value = this.#items.get(key);
      if (value?.state === 'pending' && (!latest || key[1] > latest.key[1])) latest = { key, value };
    }
    return latest;
  }

  /**
   * A new copy of an instance replaced the stored one (same SOP Instance UID), whose file goes once this
   * transaction commits: items (pending or dead) that would send the old file send the new one instead,
   * their fingerprints follow. Runs inside the spool's index transaction (Spool.onReplaced).
   */
  #followReplacement(previous: InstanceRecord, record: InstanceRecord): void {
    if (previous.path === record.path) return;
    for (const id of this.#bySop.getValues(record.sopInstanceUid)) {
      const key = parseId(id);
      const item = key && this.#items.get(key);
      if (!key || !item || item.path !== previous.path) continue;
      const updated: QueueItem = {
        ...item, path: record.path, transferSyntaxUid: record.transferSyntaxUid, sopClassUid: record.sopClassUid,
        seriesInstanceUid: record.seriesInstanceUid, studyInstanceUid: record.studyInstanceUid,
      };
      delete updated.datasetSha256;
      delete updated.fingerprint;
      if (record.sha256 !== undefined) {
        updated.datasetSha256 = record.sha256;
        updated.fingerprint = fingerprintOf(record.sha256, item.modifications);
      }
      this.#items.put(key, updated);
    }
  }

  /** The dataset hash of the instance row this item sends (the same file), read in the caller's transaction. */
  #storedSha256(item: NewQueueItem): string | undefined {
    const record = this.#spool.get(item.sopInstanceUid);
    return record && record.path === item.path ? record.sha256 : undefined;
  }

  get(id: string): QueueItem | undefined {
    const key = parseId(id);
    return key && this.#items.get(key);
  }

  /**
   * Items of `peer` that may be sent now, in arrival order. An item is held back while an earlier item
   * of its series is pending but not yet due, or is in `inFlight` (ids being sent on another association).
   */
  pending(peer: string, opts: { limit?: number; now?: Date; inFlight?: ReadonlySet<string> } = {}): QueueItem[] {
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    const now = (opts.now ?? new Date()).toISOString();
    const held = new Set<string>();
    const out: QueueItem[] = [];
    if (limit <= 0) return out;
    for (const item of this.#peerItems(peer)) {
      if (item.state !== 'pending') continue;
      if (held.has(item.seriesInstanceUid)) continue;
      if (item.nextAttemptAt > now || opts.inFlight?.has(item.id)) {
        held.add(item.seriesInstanceUid);
        continue;
      }
      out.push(item);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** When the next pending item of `peer` may be sent (possibly already past); undefined if none is pending. */
  nextDueAt(peer: string): Date | undefined {
    // Only the first pending item of each series can become sendable first; later ones wait for it.
    const heads = new Set<string>();
    let earliest: string | undefined;
    for (const item of this.#peerItems(peer)) {
      if (item.state !== 'pending' || heads.has(item.seriesInstanceUid)) continue;
      heads.add(item.seriesInstanceUid);
      if (earliest === undefined || item.nextAttemptAt < earliest) earliest = item.nextAttemptAt;
    }
    return earliest === undefined ? undefined : new Date(earliest);
  }

  /** The peer confirmed the instance: the item goes, the delivery is recorded, in one durable transaction. */
  async delivered(id: string, info: { status: number; now?: Date; statusOverride?: { status: string; outcome: string } }): Promise<void> {
    const key = parseId(id);
    if (!key) return;
    await this.#root.transaction(() => {
      const item = this.#items.get(key);
      if (!item) return; // purged while it was being sent
      const dkey: [string, string] = [item.sopInstanceUid, item.peer];
      const count = (this.#deliveries.get(dkey)?.count ?? 0) + 1;
      const at = (info.now ?? new Date()).toISOString();
      this.#deliveries.put(dkey, {
        sopInstanceUid: item.sopInstanceUid, peer: item.peer, status: info.status, at, id, rule: item.rule, count,
        ...(item.fingerprint !== undefined ? { fingerprint: item.fingerprint } : {}),
        ...(info.statusOverride ? { statusOverride: `${info.statusOverride.status} → ${info.statusOverride.outcome}` } : {}),
      });
      if (info.statusOverride) this.#countOverride(item, info.statusOverride, at);
      this.#remove(key, item);
    });
  }

  /** Status overrides applied for a peer (every status, most used first). */
  overridesApplied(peer: string): OverrideApplied[] {
    return Array.from(this.#overrides.getRange({ start: [peer, ''], end: [`${peer}\u0000`, ''] }), ({ value }) => value).sort((a, b) => b.count - a.count);
  }

  #countOverride(item: QueueItem, o: { status: string; outcome: string }, at: string): void {
    const okey: [string, string] = [item.peer, o.status];
    const count = (this.#overrides.get(okey)?.count ?? 0) + 1;
    this.#overrides.put(okey, { peer: item.peer, status: o.status, outcome: o.outcome, count, lastAt: at, lastSopInstanceUid: item.sopInstanceUid });
  }

  /**
   * Every item of `peer` due now (not in flight elsewhere) becomes a dead letter with `reason`, in one
   * transaction: the peer answered in a way no retry can change (a permanent association reject).
   * Items backing off keep their turn. Resolves with the items as they now are.
   */
  async deadLetterDue(peer: string, reason: string, opts: { inFlight?: ReadonlySet<string>; now?: Date } = {}): Promise<QueueItem[]> {
    const now = (opts.now ?? new Date()).toISOString();
    return this.#root.transaction(() => {
      const out: QueueItem[] = [];
      for (const { key, value } of this.#items.getRange({ start: [peer, 0], end: [peer, LAST_SEQ] })) {
        if (value.state !== 'pending' || value.nextAttemptAt > now || opts.inFlight?.has(value.id)) continue;
        const updated: QueueItem = { ...value, state: 'dead', attempts: value.attempts + 1, lastError: reason, deadReason: reason };
        delete updated.lastStatus;
        this.#items.put(key, updated);
        out.push(updated);
      }
      return out;
    });
  }

  /**
   * A try failed. Retryable and attempts left → pending again after backoffMs(attempts); otherwise a dead
   * letter with the reason. Resolves with the updated item, or undefined if it is gone (purged meanwhile).
   */
  async failed(
    id: string,
    info: { status?: number; error: string; retryable: boolean; policy: RetryPolicy; now?: Date; random?: () => number; statusOverride?: { status: string; outcome: string } },
  ): Promise<QueueItem | undefined> {
    const key = parseId(id);
    if (!key) return undefined;
    const now = info.now ?? new Date();
    return this.#root.transaction(() => {
      const item = this.#items.get(key);
      if (!item) return undefined;
      const attempts = item.attempts + 1;
      if (info.statusOverride) this.#countOverride(item, info.statusOverride, now.toISOString());
      const updated: QueueItem = { ...item, attempts, lastError: info.error };
      if (info.status !== undefined) updated.lastStatus = info.status;
      else delete updated.lastStatus;
      if (info.retryable && attempts < info.policy.attempts) {
        updated.state = 'pending';
        updated.nextAttemptAt = new Date(now.getTime() + backoffMs(attempts, info.policy, info.random)).toISOString();
      } else {
        updated.state = 'dead';
        updated.deadReason = info.retryable ? `gave up after ${attempts} attempts: ${info.error}` : info.error;
      }
      this.#items.put(key, updated);
      return updated;
    });
  }

  /** Items of a peer (or one id), dead or pending, become pending and due now with fresh attempts. */
  async retry(peerOrId: string, now: Date = new Date()): Promise<number> {
    return this.#root.transaction(() => {
      let count = 0;
      for (const { key, value } of this.#target(peerOrId)) {
        const updated: QueueItem = { ...value, state: 'pending', attempts: 0, nextAttemptAt: now.toISOString() };
        delete updated.deadReason;
        this.#items.put(key, updated);
        count++;
      }
      return count;
    });
  }

  /** Remove the items of a peer (or one id), undelivered. */
  async purge(peerOrId: string): Promise<number> {
    return this.#root.transaction(() => {
      let count = 0;
      for (const { key, value } of this.#target(peerOrId)) {
        this.#remove(key, value);
        count++;
      }
      return count;
    });
  }

  /** All items, or one peer's, by peer then arrival. */
  list(peer?: string): QueueItem[] {
    if (peer !== undefined) return [...this.#peerItems(peer)];
    return Array.from(this.#items.getRange({}), ({ value }) => value);
  }

  depth(peer: string): { pending: number; dead: number } {
    const depth = { pending: 0, dead: 0 };
    for (const item of this.#peerItems(peer)) depth[item.state]++;
    return depth;
  }

  /** Queue items (pending or dead) that still need this instance's file: retention waits for 0. */
  outstanding(sopInstanceUid: string): number {
    return this.#bySop.getValuesCount(sopInstanceUid);
  }

  /** Every confirmed delivery, instance by instance (a start-up reconciliation reads them once). */
  *allDeliveries(): Iterable<Delivery> {
    for (const { value } of this.#deliveries.getRange({})) yield value;
  }

  /** What the destinations confirmed for this instance. */
  deliveries(sopInstanceUid: string): Delivery[] {
    return Array.from(this.#deliveries.getRange({ start: [sopInstanceUid, ''], end: [`${sopInstanceUid}\u0000`, ''] }), ({ value }) => value);
  }

  /** Peers with at least one item, in name order. */
  peers(): string[] {
    const out: string[] = [];
    let start: Key | undefined;
    for (;;) {
      // Jump over each peer's items: one seek per peer, not one step per item.
      const [key] = [...this.#items.getKeys(start ? { start, limit: 1 } : { limit: 1 })];
      if (!key) return out;
      out.push(key[0]);
      start = [key[0], Number.POSITIVE_INFINITY];
    }
  }

  #peerItems(peer: string): Iterable<QueueItem> {
    return this.#items.getRange({ start: [peer, 0], end: [peer, LAST_SEQ] }).map(({ value }) => value);
  }

  #target(peerOrId: string): { key: Key; value: QueueItem }[] {
    const key = parseId(peerOrId);
    const one = key && this.#items.get(key);
    if (key && one) return [{ key, value: one }];
    return Array.from(this.#items.getRange({ start: [peerOrId, 0], end: [peerOrId, LAST_SEQ] }));
  }

  #remove(key: Key, item: QueueItem): void {
    this.#items.remove(key);
    this.#bySop.remove(item.sopInstanceUid, item.id);
  }
}
