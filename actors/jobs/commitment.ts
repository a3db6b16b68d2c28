// Storage Commitment Push Model SCP (issue 15): records each N-ACTION request durably
// (commitment-store.ts), decides when its instances are committed by the listener's `commitWhen`,
// and reports the result (commitment-report.ts), retried with the requester peer's backoff until
// acknowledged, across restarts.
//   stored:    every referenced instance is indexed in the spool with the SOP class given
//              (else 0112 no such object instance / 0119 class-instance conflict);
//   delivered: and every forward the rules made for it is confirmed by its destination (no queue item,
//              pending or dead, still refers to it, and no completion group still holds it);
//   committed-downstream: and every destination asked for storage commitment (peers[].storageCommitment)
//              has committed it; one that reports it failed (or never reports) fails it here, 0110,
//              the why naming the peer and its Failure Reason.
// A request not committed by its deadline (timeoutHours) reports the instances still waiting as
// failed, 0110, and the log and the record say why (dead letter, still queued, held).
import type { Logger } from 'pino';
import type { AnyActorRef } from 'xstate';
import { commitmentMachine } from '../../machines/commitment.machine.ts';
import type { CommitmentJobEvent, CommitmentJobInput } from '../../machines/commitment.machine.ts';
import type { CommitWhen, ListenerConfig, PeerConfig, StorageCommitmentConfig } from '../../config/config.ts';
import type { StoreResult } from '../../machines/dimse/dimse.events.ts';
import { Status } from '../../protocol/status.ts';
import { ActionInformationError, decodeCommitmentRequest, FailureReason } from '../../protocol/storage-commitment.ts';
import type { CommitmentResult, FailedSop, SopReference } from '../../protocol/storage-commitment.ts';
import type { OutboundQueue, QueueItem } from '../forward/outbound-queue.ts';
import { backoffMs } from '../forward/retry-policy.ts';
import type { Spool } from '../ingest/spool.ts';
import type { DownstreamVerdict } from './commitment-scu.ts';
import { CommitmentStore } from './commitment-store.ts';
import type { CommitmentRecord } from './commitment-store.ts';
import { refused, reportFailure, ReportRefusedError, reportOnNewAssociation } from './commitment-report.ts';
import type { SameAssociationReporter } from './commitment-report.ts';

/** Who asked, where: the N-ACTION's association. */
export type CommitmentRequestContext = {
  listener: string;
  callingAeTitle: string;
  calledAeTitle: string;
  transferSyntaxUid: string;
  /** The requester's association, while it lasts (report: same-association-first). */
  reporter?: SameAssociationReporter;
};

export type CommitmentServiceOptions = {
  spool: Spool;
  queue: OutboundQueue;
  peers: readonly PeerConfig[];
  listeners: readonly ListenerConfig[];
  logger: Logger;
  /** commitWhen committed-downstream: what the storage commitment peers it was delivered to say (actors/jobs/commitment-scu.ts). */
  downstream?: (sopInstanceUid: string) => DownstreamVerdict;
  /** A routing rule's own commitWhen, by rule name (the rules in force). */
  ruleCommitWhen?: (rule: string) => CommitWhen | undefined;
  /** Instances something else still holds back from sending (completion groups). */
  holds?: (sopInstanceUid: string) => boolean;
  /**
   * A cluster node (issue 17): the instances of these that other nodes stored (the shared instance
   * directory) and what their shared queue items still wait for; rejects when the database is away.
   */
  elsewhere?: (sopInstanceUids: string[]) => Promise<Map<string, { node: string; sopClassUid: string; waiting?: string }>>;
  /** A cluster node: requests shared through PostgreSQL. */
  share?: CommitmentShare;
  /** How often open requests are looked at (deliveries, deadlines, reports due). */
  checkEveryMs?: number;
  /** Where each open request's machine lives (children of the root: the actor tree and the inspector). */
  jobs?: { start(id: string, logic: typeof commitmentMachine, input: CommitmentJobInput): AnyActorRef | undefined; end(id: string): void };
  /** A requester that keeps its association after the N-ACTION-RSP gets the report there; one that
   *  releases at once (most do, Orthanc too) is not raced with a report: it is sent no sooner than this. */
  sameAssociationGraceMs?: number;
};

/**
 * Where requests are shared when this router is a node of a cluster (issue 17;
 * actors/cluster/shared-commitments.ts): each request is recorded here first (before the N-ACTION-RSP),
 * then published with this node holding its lease; when this node dies another node adopts the open
 * request and decides and reports it. Without a share: this node's LMDB only.
 */
export type CommitmentShare = {
  attach(service: { adopt(record: CommitmentRecord): Promise<void>; settledElsewhere(id: string, by: string): Promise<void>; open(): CommitmentRecord[]; get(id: string): CommitmentRecord | undefined }): void;
  /** A request recorded or changed here (published soon). */
  changed(record: CommitmentRecord): void;
  /** Does this node hold the request (decide and report it)? */
  mine(id: string): boolean;
};

/** The id of a request's machine among the root's children. */
export const jobId = (recordId: string) => `commitment-${recordId}`;

/** A reported request stays this long (the operator can look it up; a reused Transaction UID is recognised). */
const KEEP_REPORTED_MS = 7 * 24 * 3600_000;
const PRUNE_EVERY_MS = 3600_000;

type Verdict = { committed: true } | { failed: number; why: string } | { waiting: string };
type Elsewhere = Awaited<ReturnType<NonNullable<CommitmentServiceOptions['elsewhere']>>>;

/** A cluster node looks an unknown instance up for this long after the request (another node may be publishing it). */
const DIRECTORY_GRACE_MS = 10_000;

export class CommitmentService {
  readonly store: CommitmentStore;
  readonly #o: CommitmentServiceOptions;
  readonly #log: Logger;
  /** Requesters' associations, by record id, while they last. */
  readonly #reporters = new Map<string, SameAssociationReporter>();
  /** Instances of requests not reported yet (retention keeps them): derived from the store. */
  #pendingSops = new Map<string, number>();
  /** Ids of the records not reported yet: a check reads only these (reported ones stay for `keepReportedMs`). */
  readonly #open = new Set<string>();
  #lastPrune = 0;
  readonly #jobRefs = new Map<string, AnyActorRef>();
  /** Reports under way, by record id (stop() waits for them: they write to the spool's LMDB). */
  readonly #reporting = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: CommitmentServiceOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    this.store = new CommitmentStore(opts.spool);
  }

  /** The listener's storage commitment settings, if it performs it. */
  configOf(listener: string): StorageCommitmentConfig | undefined {
    const c = this.#o.listeners.find((l) => l.name === listener)?.storageCommitment;
    return c?.enabled ? c : undefined;
  }

  /** Resumes the open requests (their machines, their retention holds), then checks them now and every checkEveryMs. */
  start(): void {
    for (const r of this.store.open()) this.#hold(r);
    this.#o.share?.attach({
      adopt: (record) => this.#adopt(record),
      settledElsewhere: (id, by) => this.#settledElsewhere(id, by),
      open: () => this.store.open(),
      get: (id) => this.store.get(id),
    });
    this.#timer = setInterval(() => this.check(), this.#o.checkEveryMs ?? 1000);
    this.#timer.unref();
    this.check();
  }

  /** Stops checking; resolves once a check under way has ended (the spool must not close under it). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
    await Promise.all(this.#reporting.values());
  }

  /** Retention: an instance of a request not reported yet stays in the spool. */
  holds(sopInstanceUid: string): boolean {
    return (this.#pendingSops.get(sopInstanceUid) ?? 0) > 0;
  }

  /** The N-ACTION's Action Information: validated, recorded durably; the N-ACTION-RSP's status. */
  async request(ctx: CommitmentRequestContext, actionInformation: Uint8Array): Promise<StoreResult> {
    const log = this.#log.child({ listener: ctx.listener, callingAe: ctx.callingAeTitle });
    const config = this.configOf(ctx.listener);
    if (!config) return { status: Status.NO_SUCH_SOP_CLASS, errorComment: 'storage commitment is not enabled on this listener' };
    const peer = this.#o.peers.find((p) => p.aeTitle === ctx.callingAeTitle);
    if (!peer) {
      log.warn({ aeTitle: ctx.callingAeTitle }, 'storage commitment refused: no peer configured with the requester\'s AE title to send the report to');
      return { status: Status.PROCESSING_FAILURE, errorComment: `no peer has AE title ${ctx.callingAeTitle} to report to` };
    }
    let request;
    try {
      request = decodeCommitmentRequest(actionInformation, ctx.transferSyntaxUid);
    } catch (err) {
      if (!(err instanceof ActionInformationError)) throw err;
      log.warn({ status: err.status, why: err.message }, 'storage commitment request refused: malformed Action Information');
      return { status: err.status, errorComment: err.message };
    }
    const now = new Date();
    const record = await this.store.add(
      {
        transactionUid: request.transactionUid, listener: ctx.listener, callingAeTitle: ctx.callingAeTitle, calledAeTitle: ctx.calledAeTitle,
        peer: peer.name, commitWhen: config.commitWhen, report: config.report, referenced: request.referenced,
        receivedAt: now.toISOString(), deadline: new Date(now.getTime() + config.timeoutHours * 3600_000).toISOString(),
        state: 'waiting', reportAttempts: 0,
      },
      // PS3.4 J.3.3.1.1.2: a Transaction UID already in use; every instance is reported failed with 0131.
      (r) => ({
        ...r, state: 'reporting',
        result: { transactionUid: r.transactionUid, committed: [], failed: r.referenced.map((s) => ({ ...s, failureReason: FailureReason.DUPLICATE_TRANSACTION_UID })) },
        why: Object.fromEntries(r.referenced.map((s) => [s.sopInstanceUid, 'duplicate Transaction UID'])),
      }),
    );
    if (record.state === 'reporting') log.warn({ transactionUid: record.transactionUid, id: record.id }, 'storage commitment request reuses a Transaction UID: reported failed (0131)');
    else log.info({ transactionUid: record.transactionUid, instances: record.referenced.length, commitWhen: record.commitWhen }, 'storage commitment requested');
    this.#hold(record);
    this.#o.share?.changed(record);
    if (ctx.reporter && record.report === 'same-association-first') this.#reporters.set(record.id, ctx.reporter);
    // Answered first (the N-ACTION-RSP goes out when this resolves), then looked at.
    setTimeout(() => this.check(), (this.#o.sameAssociationGraceMs ?? 500) + 10).unref();
    return { status: Status.SUCCESS };
  }

  /** One pass over the open requests: decide what can be, report what is due. */
  check(now = new Date()): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const run = (this.#running ?? Promise.resolve()).then(() => this.#pass(now)).catch((err: Error) => this.#log.error({ err: err.message }, 'storage commitment check failed'));
    this.#running = run;
    return run;
  }

  async #pass(now: Date): Promise<void> {
    if (now.getTime() - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = now.getTime();
      const pruned = await this.store.pruneReported(new Date(now.getTime() - KEEP_REPORTED_MS));
      if (pruned > 0) this.#log.info({ pruned }, 'storage commitment: old reported requests pruned');
    }
    // A requester's association that has ended is let go (its requests report on new associations).
    for (const [id, reporter] of this.#reporters) if (!reporter.isOpen() && !this.#reporting.has(id)) this.#reporters.delete(id);
    const items = lazyItemsBySop(this.#o.queue);
    for (const id of [...this.#open]) {
      if (this.#stopped) return;
      const record = this.store.get(id);
      if (!record || record.state === 'reported') continue;
      // A cluster node: another node holds this request now (it adopted it while this one was away).
      if (this.#o.share && !this.#o.share.mine(id)) continue;
      let r = record;
      if (r.state === 'waiting') r = await this.#decide(r, now, items);
      // Not on the requester's association before the grace time: it may be releasing it right now.
      const graceUntil = Date.parse(r.receivedAt) + (this.#o.sameAssociationGraceMs ?? 500);
      if (this.#reporters.has(r.id) && now.getTime() < graceUntil) continue;
      if (r.state === 'reporting' && (!r.nextReportAt || Date.parse(r.nextReportAt) <= now.getTime()) && !this.#reporting.has(r.id)) {
        const id = r.id;
        this.#reporting.set(id, this.#report(r).catch((err: Error) => this.#log.error({ err: err.message, id }, 'storage commitment report failed')).finally(() => this.#reporting.delete(id)));
      }
    }
  }

  /** Is every instance committed (or is the deadline past)? Records the result when known. */
  async #decide(record: CommitmentRecord, now: Date, items: (sop: string) => QueueItem[]): Promise<CommitmentRecord> {
    const committed: SopReference[] = [];
    const failed: FailedSop[] = [];
    const why: Record<string, string> = {};
    const waitingFor: Record<string, string> = {};
    // A cluster node: what is not stored here may be on another node (its forwards in the shared queue).
    const notHere = this.#o.elsewhere ? record.referenced.filter((r) => !this.#o.spool.get(r.sopInstanceUid)).map((r) => r.sopInstanceUid) : [];
    let elsewhere: Elsewhere | undefined;
    if (notHere.length > 0) {
      try {
        elsewhere = await this.#o.elsewhere!(notHere);
      } catch {
        // The cluster database is away: decided once it answers (or at the deadline, as not found).
        if (now.getTime() < Date.parse(record.deadline)) return record;
        elsewhere = new Map();
      }
    }
    const young = now.getTime() - Date.parse(record.receivedAt) < DIRECTORY_GRACE_MS;
    for (const ref of record.referenced) {
      const v = this.#verdict(record, ref, items, elsewhere, young);
      if ('committed' in v) committed.push(ref);
      else if ('failed' in v) {
        failed.push({ ...ref, failureReason: v.failed });
        why[ref.sopInstanceUid] = v.why;
      } else waitingFor[ref.sopInstanceUid] = v.waiting;
    }
    const expired = now.getTime() >= Date.parse(record.deadline);
    if (Object.keys(waitingFor).length > 0 && !expired) {
      if (JSON.stringify(waitingFor) !== JSON.stringify(record.waitingFor ?? {})) {
        const updated = { ...record, waitingFor };
        await this.#put(updated);
        this.#tell(record.id, { type: 'PROGRESS', waitingFor: Object.keys(waitingFor).length });
        return updated;
      }
      return record;
    }
    for (const [sop, reason] of Object.entries(waitingFor)) {
      const ref = record.referenced.find((s) => s.sopInstanceUid === sop)!;
      failed.push({ ...ref, failureReason: FailureReason.PROCESSING_FAILURE });
      why[sop] = `not committed within the timeout: ${reason}`;
    }
    const result: CommitmentResult = { transactionUid: record.transactionUid, committed, failed };
    const updated: CommitmentRecord = { ...record, state: 'reporting', result, why, waitingFor: {} };
    await this.#put(updated);
    this.#tell(record.id, { type: 'DECIDED', committed: committed.length, failed: failed.length });
    this.#log.info(
      { transactionUid: record.transactionUid, committed: committed.length, failed: failed.map((f) => ({ sopInstanceUid: f.sopInstanceUid, reason: f.failureReason.toString(16).padStart(4, '0'), why: why[f.sopInstanceUid] })) },
      failed.length === 0 ? 'storage commitment: every instance committed' : 'storage commitment: some instances failed',
    );
    return updated;
  }

  #verdict(record: CommitmentRecord, ref: SopReference, itemsOf: (sop: string) => QueueItem[], elsewhere?: Elsewhere, young = false): Verdict {
    const stored = this.#o.spool.get(ref.sopInstanceUid);
    if (!stored && elsewhere) return remoteVerdict(record, ref, elsewhere.get(ref.sopInstanceUid), young);
    if (!stored) return { failed: FailureReason.NO_SUCH_OBJECT_INSTANCE, why: 'not received by the router' };
    if (stored.sopClassUid !== ref.sopClassUid) return { failed: FailureReason.CLASS_INSTANCE_CONFLICT, why: `stored with SOP class ${stored.sopClassUid}` };
    const commitWhen = this.#commitWhenOf(record, ref.sopInstanceUid, itemsOf);
    if (commitWhen === 'stored') return { committed: true };
    // A destination's failed commitment fails the instance upstream at once (its dead letter may be retried, but not for this request).
    const downstream = commitWhen === 'committed-downstream' ? this.#o.downstream?.(ref.sopInstanceUid) : undefined;
    if (downstream && 'failed' in downstream) return { failed: FailureReason.PROCESSING_FAILURE, why: downstream.failed };
    if (this.#o.holds?.(ref.sopInstanceUid)) return { waiting: 'held until its series/study is complete' };
    if (this.#o.queue.outstanding(ref.sopInstanceUid) > 0) {
      const items = itemsOf(ref.sopInstanceUid);
      const dead = items.filter((i) => i.state === 'dead');
      if (dead.length > 0) return { waiting: `dead letter at ${dead.map((i) => `${i.peer} (${i.deadReason ?? i.lastError ?? 'failed'})`).join(', ')}` };
      return { waiting: `not yet delivered to ${items.map((i) => i.peer).join(', ')}${items.some((i) => i.lastError) ? ` (last error: ${items.find((i) => i.lastError)!.lastError})` : ''}` };
    }
    if (downstream && 'waiting' in downstream) return downstream;
    return { committed: true };
  }

  /**
   * The commitWhen for one instance: the strictest of the listener's (recorded with the request) and of
   * every rule that forwarded it (its queue items and deliveries name them). A rule can only tighten it.
   */
  #commitWhenOf(record: CommitmentRecord, sop: string, itemsOf: (sop: string) => QueueItem[]): CommitWhen {
    const ruleOf = this.#o.ruleCommitWhen;
    if (!ruleOf || record.commitWhen === 'committed-downstream') return record.commitWhen;
    const rules = new Set(this.#o.queue.deliveries(sop).map((d) => d.rule));
    if (this.#o.queue.outstanding(sop) > 0) for (const i of itemsOf(sop)) rules.add(i.rule);
    return [...rules].reduce<CommitWhen>((strictest, rule) => stricter(strictest, ruleOf(rule)), record.commitWhen);
  }

  async #report(record: CommitmentRecord): Promise<void> {
    const result = record.result!;
    const log = this.#log.child({ transactionUid: record.transactionUid, peer: record.peer });
    const reporter = this.#reporters.get(record.id);
    let via: CommitmentRecord['reportedVia'];
    let error: string | undefined;
    let refusal: string | undefined;
    if (reporter?.isOpen()) {
      const outcome = await reporter.send(result);
      error = reportFailure(outcome);
      if (error === undefined) via = 'same-association';
      else if (refused(outcome)) {
        via = 'same-association';
        refusal = error;
      } else log.info({ why: error }, 'storage commitment report not taken on the requester\'s association: trying a new one');
    }
    const peer = this.#o.peers.find((p) => p.name === record.peer);
    if (!via) {
      if (!peer) error = `peer ${record.peer} is no longer configured`;
      else {
        try {
          await reportOnNewAssociation(peer, record.calledAeTitle, result, log);
          via = 'new-association';
          error = undefined;
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
          if (err instanceof ReportRefusedError) {
            via = 'new-association';
            refusal = error;
          }
        }
      }
    }
    // The requester's association serves the retries too, while it lasts.
    if (via || !reporter?.isOpen()) this.#reporters.delete(record.id);
    if (this.#stopped && !via) return;
    const current = this.store.get(record.id) ?? record;
    if (via) {
      await this.#put({
        ...current, state: 'reported', reportedAt: new Date().toISOString(), reportedVia: via, reportAttempts: current.reportAttempts + 1,
        nextReportAt: undefined, lastReportError: undefined, ...(refusal ? { reportRefused: refusal } : {}),
      });
      this.#tell(record.id, { type: 'REPORTED', via });
      this.#release(record);
      if (refusal) log.warn({ via, why: refusal }, 'storage commitment report refused by the requester: not sent again');
      else log.info({ via, eventType: result.failed.length === 0 ? 1 : 2 }, 'storage commitment reported');
      return;
    }
    const attempts = current.reportAttempts + 1;
    const retry = peer?.retry ?? { initialBackoffSeconds: 60, maxBackoffSeconds: 3600, jitter: 0.2 };
    const delay = backoffMs(attempts, { attempts: Number.MAX_SAFE_INTEGER, initialBackoffMs: retry.initialBackoffSeconds * 1000, maxBackoffMs: retry.maxBackoffSeconds * 1000, jitter: retry.jitter });
    const nextReportAt = new Date(Date.now() + delay).toISOString();
    await this.#put({ ...current, reportAttempts: attempts, lastReportError: error, nextReportAt });
    this.#tell(record.id, { type: 'REPORT_FAILED', attempts, nextReportAt, error: error ?? 'unknown' });
    log.warn({ why: error, attempts, nextReportAt }, 'storage commitment report not delivered: will retry');
  }

  async #put(record: CommitmentRecord): Promise<void> {
    await this.store.put(record);
    this.#o.share?.changed(record);
  }

  /** A cluster node took over a request whose node died: recorded here, decided and reported from here. */
  async #adopt(record: CommitmentRecord): Promise<void> {
    if (this.#stopped) return;
    await this.store.put(record);
    if (!this.#open.has(record.id)) this.#hold(record);
    this.check();
  }

  /** Another node of the cluster reported this request (it held it while this node was away). */
  async #settledElsewhere(id: string, by: string): Promise<void> {
    const record = this.store.get(id);
    if (!record || record.state === 'reported') return;
    await this.store.put({ ...record, state: 'reported', reportedAt: new Date().toISOString(), reportedVia: 'new-association', lastReportError: `reported by node ${by} of the cluster` });
    this.#tell(id, { type: 'REPORTED', via: 'new-association' });
    this.#release(record);
    this.#log.info({ transactionUid: record.transactionUid, node: by }, 'storage commitment request reported by another node of the cluster');
  }

  /** Tells the request's machine what happened to it. */
  #tell(id: string, event: CommitmentJobEvent): void {
    this.#jobRefs.get(id)?.send(event);
  }

  #hold(record: CommitmentRecord): void {
    this.#open.add(record.id);
    const ref = this.#o.jobs?.start(jobId(record.id), commitmentMachine, {
      id: record.id, transactionUid: record.transactionUid, requester: record.callingAeTitle, commitWhen: record.commitWhen,
      instances: record.referenced.length, deadline: record.deadline, state: record.state === 'reporting' ? 'reporting' : 'waiting',
      waitingFor: Object.keys(record.waitingFor ?? {}).length, reportAttempts: record.reportAttempts,
      ...(record.nextReportAt ? { nextReportAt: record.nextReportAt } : {}), ...(record.lastReportError ? { lastReportError: record.lastReportError } : {}),
    });
    if (ref) this.#jobRefs.set(record.id, ref);
    for (const s of record.referenced) this.#pendingSops.set(s.sopInstanceUid, (this.#pendingSops.get(s.sopInstanceUid) ?? 0) + 1);
  }

  #release(record: CommitmentRecord): void {
    this.#open.delete(record.id);
    this.#jobRefs.delete(record.id);
    this.#o.jobs?.end(jobId(record.id));
    for (const s of record.referenced) {
      const n = (this.#pendingSops.get(s.sopInstanceUid) ?? 1) - 1;
      if (n <= 0) this.#pendingSops.delete(s.sopInstanceUid);
      else this.#pendingSops.set(s.sopInstanceUid, n);
    }
  }
}

/** An instance this node does not hold, by the cluster's directory: the other node's shared queue items decide `delivered`. */
function remoteVerdict(record: CommitmentRecord, ref: SopReference, found: Elsewhere extends Map<string, infer V> ? V | undefined : never, young: boolean): Verdict {
  if (!found) return young ? { waiting: 'not in the cluster\'s instance directory yet' } : { failed: FailureReason.NO_SUCH_OBJECT_INSTANCE, why: 'not received by any node of the cluster' };
  if (found.sopClassUid !== ref.sopClassUid) return { failed: FailureReason.CLASS_INSTANCE_CONFLICT, why: `stored on node ${found.node} with SOP class ${found.sopClassUid}` };
  if (record.commitWhen === 'stored') return { committed: true };
  if (found.waiting) return { waiting: found.waiting };
  // Downstream commitments are recorded by the node that delivered the instance, not shared.
  if (record.commitWhen === 'committed-downstream') return { waiting: `stored on node ${found.node}: its downstream commitment is known to that node only` };
  return { committed: true };
}

const STRICTNESS: readonly CommitWhen[] = ['stored', 'delivered', 'committed-downstream'];

/** The stricter of two commitWhen (an absent one does not count). */
export function stricter(a: CommitWhen, b: CommitWhen | undefined): CommitWhen {
  return b !== undefined && STRICTNESS.indexOf(b) > STRICTNESS.indexOf(a) ? b : a;
}

/** The queue items of an instance, from one scan of the queue made on first need in a check (only instances still outstanding ask). */
function lazyItemsBySop(queue: OutboundQueue): (sop: string) => QueueItem[] {
  let bySop: Map<string, QueueItem[]> | undefined;
  return (sop) => {
    if (!bySop) {
      bySop = new Map();
      for (const item of queue.list()) bySop.set(item.sopInstanceUid, [...(bySop.get(item.sopInstanceUid) ?? []), item]);
    }
    return bySop.get(sop) ?? [];
  };
}
