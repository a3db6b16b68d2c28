// Storage Commitment Push Model SCU (issue 15, the peer side): after the router delivers an instance
// to a peer with `storageCommitment.enabled`, it asks that peer to commit it.
//   - Deliveries come from the domain events (instance-forwarded), recorded durably per [peer, SOP].
//   - Each check, a peer's delivered instances are asked for in one N-ACTION (Action Type 1, a new
//     Transaction UID, up to `batch` instances) once `batch` are waiting or deliveries have been quiet
//     for a moment; the request is recorded before it is sent.
//   - The N-EVENT-REPORT is taken on that association (the router holds it open a little while) or
//     on the router's listener (the peer in SCP role: actors/net/acceptor.ts dispatches it here).
//   - Committed instances are recorded so; failed ones (the report says so, or none came within
//     `waitHours`) become dead letters for the peer with the Failure Reason in words, and `queue retry`
//     resends them (C-STORE again, then a new commitment request).
// An N-ACTION that gets no response is asked again later with the peer's backoff (a new Transaction
// UID); one the peer refuses is a failure for its instances. After a restart, requests still waiting
// for their report are asked again: a report sent while the router was down is lost to it.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { PeerConfig } from '../../config/config.ts';
import type { StoreResult } from '../../machines/dimse/dimse.events.ts';
import { Status } from '../../protocol/status.ts';
import { decodeCommitmentResult, failureReasonText } from '../../protocol/storage-commitment.ts';
import type { CommitmentResult } from '../../protocol/storage-commitment.ts';
import { isValidUid } from '../../protocol/uids.ts';
import type { RuleSet } from '../../routing/rule.types.ts';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import { queueItemFor } from '../forward/outbound-queue.ts';
import { backoffMs } from '../forward/retry-policy.ts';
import type { Spool } from '../ingest/spool.ts';
import type { DomainEvents } from '../observe/domain-events.ts';
import { askPeer } from './commitment-scu-ask.ts';
import { CommitmentScuStore } from './commitment-scu-store.ts';
import type { SentInstance, SentRequest } from './commitment-scu-store.ts';

export type CommitmentScuOptions = {
  spool: Spool;
  queue: OutboundQueue;
  peers: readonly PeerConfig[];
  events: DomainEvents;
  logger: Logger;
  /** The routing rules in force: a dead letter is resent with the modifications of the rule that delivered it. */
  rules: () => RuleSet | undefined;
  /** Turns for peers that take one association at a time (peers[].exclusive): a request waits for its turn. */
  gates?: { acquire(peer: string): Promise<() => void> };
  /** How often deliveries, deadlines and requests to send are looked at. */
  checkEveryMs?: number;
  /** A peer's deliveries are asked for once none has come for this long (or `batch` are waiting). */
  quietMs?: number;
  /** After the N-ACTION-RSP, the association is held this long for a report on it (released as soon as it comes). */
  sameAssociationWaitMs?: number;
};

/** What the downstream commitments of one instance say (commitWhen: committed-downstream). */
export type DownstreamVerdict = { committed: true } | { failed: string } | { waiting: string };

const PRUNE_EVERY_MS = 3600_000;
const KEEP_DECIDED_REQUESTS_MS = 7 * 24 * 3600_000;

/** A new UID under 2.25 (PS3.5 B.2: a UUID as one decimal integer). */
export function newTransactionUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;
}

export class CommitmentScuService {
  readonly store: CommitmentScuStore;
  readonly #o: CommitmentScuOptions;
  readonly #log: Logger;
  readonly #peers: Map<string, PeerConfig>;
  #subscription: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** N-ACTIONs under way, by peer (one at a time per peer). */
  readonly #asking = new Map<string, Promise<void>>();
  /** Writes from delivery events still under way (a check waits for them; stop() too). */
  readonly #recording = new Set<Promise<void>>();
  /** Instances whose commitment is not decided yet, with how many peers it is pending at (retention keeps them). */
  readonly #pending = new Map<string, number>();
  /** The undecided entries (delivered or requested), by peer: what a check looks at. */
  readonly #open = new Map<string, Set<string>>();
  /** Transactions whose report has come, for an association held open for it. */
  readonly #decided = new Map<string, () => void>();
  #lastPrune = 0;
  #stopped = false;

  constructor(opts: CommitmentScuOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.#peers = new Map(opts.peers.filter((p) => p.storageCommitment?.enabled).map((p) => [p.name, p]));
    this.store = new CommitmentScuStore(opts.spool);
  }

  /** Whether any peer is asked for storage commitment. */
  get enabled(): boolean {
    return this.#peers.size > 0;
  }

  /** A calling AE title that belongs to a storage commitment peer: its listener reports are taken. */
  isCommitmentPeerAe(aeTitle: string): boolean {
    return [...this.#peers.values()].some((p) => p.aeTitle === aeTitle);
  }

  /** Resumes: interrupted N-ACTIONs and requests still waiting for a report are asked again; deliveries are followed. */
  async start(): Promise<void> {
    if (!this.enabled) return;
    const now = new Date().toISOString();
    const requests: SentRequest[] = [];
    const again: SentInstance[] = [];
    for (const r of this.store.requests()) {
      if (r.state !== 'sending' && r.state !== 'requested') continue;
      requests.push({ ...r, state: 'abandoned', decidedAt: now, error: 'the router restarted before the report came: asked again' });
    }
    for (const s of this.store.instances()) {
      if (s.state === 'requested') again.push({ ...s, state: 'delivered', nextAttemptAt: now });
      if (s.state === 'requested' || s.state === 'delivered') this.#hold(s.peer, s.sopInstanceUid);
    }
    if (requests.length > 0 || again.length > 0) {
      await this.store.write(requests, again);
      this.#log.info({ requests: requests.length, instances: again.length }, 'storage commitment: requests without a report are asked again after the restart');
    }
    await this.#reconcile(new Date(now));
    this.#subscription = this.#o.events.of('instance-forwarded').subscribe((e) => {
      if (!this.#peers.has(e.peer)) return;
      const p = this.#delivered(e.peer, e.sopInstanceUid, e.sopClassUid).catch((err: Error) =>
        this.#log.error({ err: err.message, peer: e.peer, sopInstanceUid: e.sopInstanceUid }, 'storage commitment: delivery not recorded (its commitment will not be asked)'));
      this.#recording.add(p);
      void p.finally(() => this.#recording.delete(p));
    });
    this.#timer = setInterval(() => void this.check(), this.#o.checkEveryMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscription?.unsubscribe();
    clearInterval(this.#timer);
    for (const release of this.#decided.values()) release();
    await Promise.all(this.#recording);
    await this.#running;
    await Promise.all(this.#asking.values());
  }

  /** Retention: an instance whose commitment by a peer has not come back stays in the spool. */
  holds(sopInstanceUid: string): boolean {
    return (this.#pending.get(sopInstanceUid) ?? 0) > 0;
  }

  /**
   * committed-downstream: every storage commitment peer the instance was delivered to has committed it.
   * Failed at one: failed, naming the peer and its reason. Delivered, not decided: waiting.
   */
  downstream(sopInstanceUid: string): DownstreamVerdict {
    const waiting: string[] = [];
    for (const d of this.#o.queue.deliveries(sopInstanceUid)) {
      if (!this.#peers.has(d.peer)) continue;
      const s = this.store.instance(d.peer, sopInstanceUid);
      if (!s) waiting.push(`${d.peer} (delivered, commitment not asked yet)`);
      else if (s.state === 'failed') return { failed: `storage commitment failed at ${d.peer}: ${s.why ?? 'no reason given'}` };
      else if (s.state !== 'committed') waiting.push(`${d.peer} (${s.state === 'requested' ? 'commitment requested' : 'commitment not asked yet'})`);
    }
    return waiting.length > 0 ? { waiting: `storage commitment from ${waiting.join(', ')}` } : { committed: true };
  }

  /** One pass: deadlines, then requests to send. Resolves when the N-ACTIONs it started have ended. */
  check(now = new Date()): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const run = (this.#running ?? Promise.resolve())
      .then(() => this.#pass(now))
      .catch((err: Error) => this.#log.error({ err: err.message }, 'storage commitment (SCU) check failed'));
    this.#running = run;
    return run;
  }

  /** A report (Event Information) from `callingAeTitle`: recorded durably, then answered. */
  async report(callingAeTitle: string, via: 'same-association' | 'listener', eventInformation: Uint8Array, transferSyntaxUid: string): Promise<StoreResult> {
    const log = this.#log.child({ callingAe: callingAeTitle, via });
    let result: CommitmentResult;
    try {
      result = decodeCommitmentResult(eventInformation, transferSyntaxUid);
    } catch (err) {
      log.warn({ why: (err as Error).message }, 'storage commitment report refused: Event Information cannot be decoded');
      return { status: Status.INVALID_ARGUMENT_VALUE, errorComment: `Event Information cannot be decoded: ${(err as Error).message}` };
    }
    if (!isValidUid(result.transactionUid)) return { status: Status.MISSING_ATTRIBUTE_VALUE, errorComment: 'Transaction UID (0008,1195) missing or invalid' };
    const request = this.store.request(result.transactionUid);
    if (!request) {
      log.warn({ transactionUid: result.transactionUid }, 'storage commitment report for a transaction the router did not ask (or has forgotten)');
      return { status: Status.PROCESSING_FAILURE, errorComment: `Transaction UID ${result.transactionUid} is not one the router asked` };
    }
    const peer = this.#peers.get(request.peer);
    if (peer && peer.aeTitle !== callingAeTitle) log.warn({ transactionUid: result.transactionUid, peer: request.peer, peerAe: peer.aeTitle }, 'storage commitment report comes from another AE title than the peer asked: taken');
    await this.#apply(request, result, via, log);
    return { status: Status.SUCCESS };
  }

  // ---- deliveries ----

  /**
   * A delivery is recorded by the queue first and followed here from its domain event: a process that
   * died between the two (or a record that failed) left a delivery nobody asks about. At start, every
   * delivery to a storage commitment peer within its waitHours that has no entry here gets one.
   */
  async #reconcile(now: Date): Promise<void> {
    const missed: SentInstance[] = [];
    for (const d of this.#o.queue.allDeliveries()) {
      const peer = this.#peers.get(d.peer);
      if (!peer || Date.parse(d.at) < now.getTime() - peer.storageCommitment.waitHours * 3600_000) continue;
      if (this.store.instance(d.peer, d.sopInstanceUid)) continue;
      const record = this.#o.spool.get(d.sopInstanceUid);
      if (!record) continue;
      missed.push({ peer: d.peer, sopInstanceUid: d.sopInstanceUid, sopClassUid: record.sopClassUid, state: 'delivered', deliveredAt: d.at, attempts: 0, rule: d.rule });
    }
    if (missed.length === 0) return;
    await this.store.write([], missed);
    for (const s of missed) this.#hold(s.peer, s.sopInstanceUid);
    this.#log.warn({ instances: missed.length }, 'storage commitment: deliveries not followed before the last stop are asked about now');
  }

  async #delivered(peer: string, sopInstanceUid: string, sopClassUid: string): Promise<void> {
    const rule = this.#o.queue.deliveries(sopInstanceUid).find((d) => d.peer === peer)?.rule;
    const entry: SentInstance = { peer, sopInstanceUid, sopClassUid, state: 'delivered', deliveredAt: new Date().toISOString(), attempts: 0, ...(rule ? { rule } : {}) };
    await this.store.write([], [entry]);
    this.#hold(peer, sopInstanceUid);
  }

  // ---- the pass ----

  async #pass(now: Date): Promise<void> {
    await Promise.all(this.#recording);
    if (now.getTime() - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = now.getTime();
      await this.#prune(now);
    }
    for (const peer of this.#peers.values()) {
      if (this.#stopped) return;
      await this.#expire(peer, now);
      if (this.#asking.has(peer.name)) continue;
      const due = this.#due(peer, now);
      if (due.length === 0) continue;
      const asking = this.#ask(peer, due).catch((err: Error) => this.#log.error({ err: err.message, peer: peer.name }, 'storage commitment request failed'))
        .finally(() => this.#asking.delete(peer.name));
      this.#asking.set(peer.name, asking);
    }
  }

  /** The next batch to ask the peer for, or none yet (fewer than `batch` and deliveries still coming). */
  #due(peer: PeerConfig, now: Date): SentInstance[] {
    const ready = this.#openEntries(peer.name, 'delivered').filter((s) => !s.nextAttemptAt || Date.parse(s.nextAttemptAt) <= now.getTime());
    if (ready.length === 0) return [];
    const batch = peer.storageCommitment.batch;
    ready.sort((a, b) => a.deliveredAt.localeCompare(b.deliveredAt));
    const newest = Date.parse(ready[ready.length - 1].deliveredAt);
    if (ready.length < batch && now.getTime() - newest < (this.#o.quietMs ?? 2000)) return [];
    return ready.slice(0, batch);
  }

  /** Requested instances with no report by their waitUntil: failed, dead letters. */
  async #expire(peer: PeerConfig, now: Date): Promise<void> {
    const late = this.#openEntries(peer.name, 'requested').filter((s) => s.waitUntil && Date.parse(s.waitUntil) <= now.getTime());
    if (late.length === 0) return;
    const decidedAt = now.toISOString();
    const failed = late.map((s): SentInstance => ({
      ...s, state: 'failed', decidedAt, why: `no storage commitment report within ${peer.storageCommitment.waitHours} h (transaction ${s.transactionUid})`,
    }));
    await this.#fail(peer, failed);
    this.#log.warn({ peer: peer.name, instances: failed.length }, 'storage commitment: no report in time: dead letters');
  }

  // ---- asking ----

  async #ask(peer: PeerConfig, due: SentInstance[]): Promise<void> {
    const transactionUid = newTransactionUid();
    const now = new Date();
    const at = now.toISOString();
    const waitUntil = new Date(now.getTime() + peer.storageCommitment.waitHours * 3600_000).toISOString();
    const referenced = due.map((s) => ({ sopClassUid: s.sopClassUid, sopInstanceUid: s.sopInstanceUid }));
    const request: SentRequest = { transactionUid, peer: peer.name, referenced, state: 'sending', createdAt: at };
    // waitHours counts from the first request for this delivery (asking again, after no answer or a restart, does not extend it).
    const requested = due.map((s): SentInstance => ({ ...s, state: 'requested', transactionUid, requestedAt: at, waitUntil: s.waitUntil ?? waitUntil }));
    await this.store.write([request], requested);
    const log = this.#log.child({ peer: peer.name, transactionUid });
    log.info({ instances: referenced.length }, 'storage commitment: asking the peer');
    const decided = new Promise<void>((resolve) => this.#decided.set(transactionUid, resolve));
    const release = await (this.#o.gates?.acquire(peer.name) ?? Promise.resolve(() => {}));
    try {
      const outcome = await askPeer({
        peer, transactionUid, referenced, logger: log, decided, holdMs: this.#o.sameAssociationWaitMs ?? 3000,
        onReport: (bytes, ts) => this.report(peer.aeTitle, 'same-association', bytes, ts),
        taken: async () => {
          // The report may already have come (on this association, or on the listener) and decided it.
          const current = this.store.request(transactionUid) ?? request;
          if (current.state === 'sending') await this.store.write([{ ...current, state: 'requested', requestedAt: new Date().toISOString() }], []);
          log.info({ instances: referenced.length }, 'storage commitment requested: waiting for the report');
        },
      });
      if (outcome.outcome === 'refused') await this.#refused(peer, request, requested, outcome.why, log);
      else if (outcome.outcome === 'unanswered') await this.#notAsked(peer, request, requested, outcome.why, log);
    } finally {
      release();
      this.#decided.delete(transactionUid);
    }
  }

  /** The N-ACTION got no answer: its instances are asked again after the peer's backoff (a new Transaction UID). */
  async #notAsked(peer: PeerConfig, request: SentRequest, requested: SentInstance[], why: string, log: Logger): Promise<void> {
    const current = this.store.request(request.transactionUid) ?? request;
    if (current.state === 'done') return; // a report came anyway
    const now = Date.now();
    const policy = { attempts: peer.retry.attempts, initialBackoffMs: peer.retry.initialBackoffSeconds * 1000, maxBackoffMs: peer.retry.maxBackoffSeconds * 1000, jitter: peer.retry.jitter };
    const again: SentInstance[] = [];
    const exhausted: SentInstance[] = [];
    for (const s of requested) {
      const latest = this.store.instance(s.peer, s.sopInstanceUid);
      if (latest?.transactionUid !== request.transactionUid || latest.state !== 'requested') continue;
      const attempts = latest.attempts + 1;
      if (attempts >= policy.attempts) exhausted.push({ ...latest, state: 'failed', attempts, decidedAt: new Date(now).toISOString(), why: `storage commitment not asked after ${attempts} attempts: ${why}` });
      else again.push({ ...latest, state: 'delivered', attempts, lastError: why, nextAttemptAt: new Date(now + backoffMs(attempts, policy)).toISOString() });
    }
    await this.store.write([{ ...current, state: 'abandoned', decidedAt: new Date(now).toISOString(), error: why }], again);
    log.warn({ why, instances: again.length }, 'storage commitment request not answered: asked again later');
    if (exhausted.length > 0) await this.#fail(peer, exhausted);
  }

  /** The peer refused the request: each of its instances failed, with the reason. */
  async #refused(peer: PeerConfig, request: SentRequest, requested: SentInstance[], why: string, log: Logger): Promise<void> {
    const decidedAt = new Date().toISOString();
    await this.store.write([{ ...request, state: 'done', decidedAt, failed: requested.length, committed: 0, error: why }], []);
    log.warn({ why, instances: requested.length }, 'storage commitment request refused by the peer: dead letters');
    await this.#fail(peer, requested.map((s) => ({ ...s, state: 'failed' as const, decidedAt, why: `storage commitment request refused: ${why}` })));
  }

  // ---- reports ----

  async #apply(request: SentRequest, result: CommitmentResult, via: 'same-association' | 'listener', log: Logger): Promise<void> {
    const decidedAt = new Date().toISOString();
    const peer = this.#peers.get(request.peer);
    const committed: SentInstance[] = [];
    const failed: SentInstance[] = [];
    // Only the entries this transaction asked for (an instance delivered again since is another story).
    const mine = (sop: string) => {
      const s = this.store.instance(request.peer, sop);
      return s && s.transactionUid === request.transactionUid && (s.state === 'requested' || s.state === 'delivered') ? s : undefined;
    };
    for (const ref of result.committed) {
      const s = mine(ref.sopInstanceUid);
      if (s) committed.push({ ...s, state: 'committed', decidedAt });
    }
    for (const f of result.failed) {
      const s = mine(f.sopInstanceUid);
      if (s) failed.push({ ...s, state: 'failed', decidedAt, failureReason: f.failureReason, why: `failure reason ${failureReasonText(f.failureReason)}` });
    }
    // Dead letters first: a crash before the record is written leaves the report unanswered, and the peer sends it again.
    if (failed.length > 0 && peer) await this.#deadLetters(peer, failed);
    const decided = new Set([...committed, ...failed].map((s) => s.sopInstanceUid));
    const left = request.referenced.filter((r) => !decided.has(r.sopInstanceUid) && mine(r.sopInstanceUid)?.state === 'requested');
    const updated: SentRequest = {
      ...request, reportedVia: via, committed: (request.committed ?? 0) + committed.length, failed: (request.failed ?? 0) + failed.length,
      ...(left.length === 0 ? { state: 'done' as const, decidedAt } : {}),
    };
    await this.store.write([updated], [...committed, ...failed]);
    for (const s of [...committed, ...failed]) this.#release(s.peer, s.sopInstanceUid);
    if (left.length === 0) this.#decided.get(request.transactionUid)?.();
    log.info(
      { transactionUid: request.transactionUid, peer: request.peer, committed: committed.length, failed: failed.map((s) => ({ sopInstanceUid: s.sopInstanceUid, why: s.why })), stillWaiting: left.length },
      failed.length === 0 ? 'storage commitment report: committed by the peer' : 'storage commitment report: some instances failed at the peer (dead letters)',
    );
  }

  /** Failed instances: recorded, and dead letters for the peer. */
  async #fail(peer: PeerConfig, failed: SentInstance[]): Promise<void> {
    await this.#deadLetters(peer, failed);
    await this.store.write([], failed);
    for (const s of failed) this.#release(s.peer, s.sopInstanceUid);
  }

  /**
   * One dead letter per failed instance, resent by `queue retry` as the rule that delivered it sends it
   * (its modifications, its failover). The rule gone or the instance no longer in the spool: no dead
   * letter can be made faithfully; the failure stays recorded and is logged as an error.
   */
  async #deadLetters(peer: PeerConfig, failed: SentInstance[]): Promise<void> {
    const rules = this.#o.rules()?.rules ?? [];
    for (const s of failed) {
      const record = this.#o.spool.get(s.sopInstanceUid);
      const rule = rules.find((r) => r.name === s.rule);
      const target = rule?.then.forward.find((f) => f.peer === peer.name);
      const reason = `storage commitment: ${s.why ?? 'failed'}`;
      if (!record || !rule) {
        this.#log.error({ peer: peer.name, sopInstanceUid: s.sopInstanceUid, rule: s.rule, why: s.why }, `storage commitment failed and no dead letter can be made: ${!record ? 'the instance is no longer in the spool' : `rule ${s.rule ?? '(unknown)'} is gone`}`);
        continue;
      }
      const item = await this.#o.queue.addDeadLetter(queueItemFor({ peer: peer.name, ...(target?.failover ? { failover: target.failover } : {}), modifications: rule.then.modify }, rule.name, record), reason);
      this.#log.warn({ id: item.id, peer: peer.name, sopInstanceUid: s.sopInstanceUid, why: reason }, 'dead letter: storage commitment failed');
    }
  }

  // ---- retention holds, pruning ----

  /** An entry not decided yet: followed by the checks (no scan of the decided ones), its instance kept from retention. */
  #hold(peer: string, sop: string): void {
    let open = this.#open.get(peer);
    if (!open) this.#open.set(peer, (open = new Set()));
    if (open.has(sop)) return;
    open.add(sop);
    this.#pending.set(sop, (this.#pending.get(sop) ?? 0) + 1);
  }

  #release(peer: string, sop: string): void {
    if (!this.#open.get(peer)?.delete(sop)) return;
    const n = (this.#pending.get(sop) ?? 1) - 1;
    if (n <= 0) this.#pending.delete(sop);
    else this.#pending.set(sop, n);
  }

  /** A peer's undecided entries in a state, from LMDB. */
  #openEntries(peer: string, state: 'delivered' | 'requested'): SentInstance[] {
    const out: SentInstance[] = [];
    for (const sop of this.#open.get(peer) ?? []) {
      const s = this.store.instance(peer, sop);
      if (s?.state === state) out.push(s);
    }
    return out;
  }

  async #prune(now: Date): Promise<void> {
    const pruned = await this.store.pruneRequests(new Date(now.getTime() - KEEP_DECIDED_REQUESTS_MS));
    // A decided instance retention has removed from the spool is needed by nobody (committed-downstream reads only instances it holds).
    const gone = this.store.instances().filter((s) => (s.state === 'committed' || s.state === 'failed') && this.#o.spool.get(s.sopInstanceUid) === undefined);
    if (gone.length > 0) await this.store.remove(gone);
    if (pruned + gone.length > 0) this.#log.info({ requests: pruned, instances: gone.length }, 'storage commitment: old records of requests to peers pruned');
  }
}

