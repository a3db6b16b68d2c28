// Prefetch jobs in the world: planned in the LMDB transaction of the study's first instance (so a
// study triggers once, durably), run as prefetch machines whose C-FIND and C-MOVE steps open
// associations to the archive (at most the archive's maxAssociations at a time), recorded in LMDB
// at every step, resumed after a restart. A prior moved to a destination is not moved there again
// within the rule's dedupHours, whichever job asks (conformance 4.1.2.5, 4.2.5). With
// skipIfDestinationHas, the destination's Q/R SCP is asked first what it holds of each prior.
// Under a router, each job runs as a child of the root machine (JOB_STARTED / JOB_ENDED), so the
// inspector's tree shows it; without one (tests, CLI) as an actor of its own.
import { randomBytes } from 'node:crypto';
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import { createActor, fromPromise } from 'xstate';
import type { AnyActorLogic, AnyActorRef, InspectionEvent, Snapshot } from 'xstate';
import type { PeerConfig } from '../../config/config.ts';
import { FINAL_PREFETCH_STATES, PrefetchStepError, prefetchMachine } from '../../machines/prefetch.machine.ts';
import type { CountAtDestinationOutput, FindPriorsOutput, MovePriorOutput, PrefetchContext, PrefetchJobSpec, PrefetchState, PriorStep } from '../../machines/prefetch.machine.ts';
import { priorQueryKeys, resolveSelection } from '../../routing/prefetch-select.ts';
import type { PrefetchAction } from '../../routing/rule.types.ts';
import { classifyAssociationFailure } from '../forward/retry-policy.ts';
import { cFind, cMove, countStudyInstances, withQrAssociation } from './qr-scu.ts';
import type { PeerGates } from '../forward/peer-gate.ts';
import { AssociationRejectedError } from '../net/scu.ts';
import { STUDY_ROOT_FIND } from '../../protocol/uids.ts';
import type { Spool } from '../ingest/spool.ts';

export type PrefetchJobRecord = PrefetchJobSpec & {
  state: PrefetchState;
  updatedAt: string;
  attempts: number;
  reason?: string;
  /** How many studies the archive returned for the patient. */
  found?: number;
  priors?: PriorStep[];
  left?: { studyInstanceUid: string; why: string }[];
  /** Every step, in order: state changes and each prior's outcome. */
  history: { at: string; step: string }[];
};

type SeenStudy = { at: string; jobs: string[] };
export type MovedPrior = { at: string; job: string };

/** The narrow interface the acceptor uses (actors/net/acceptor.ts RoutingRuntime.prefetch). */
export type PrefetchPlanner = {
  /**
   * Inside the instance's LMDB transaction: the jobs this instance starts (none if its study was seen).
   * `dataset` (dcmjs naturalized) resolves the rules' {{Keyword}} placeholders in the prior selection.
   */
  plan(requests: (PrefetchAction & { rule: string })[], instance: PlanInstance): string[];
  /** After the commit: run them. */
  start(jobIds: string[]): void;
};

export type PlanInstance = { studyInstanceUid: string; patientId?: string; issuerOfPatientId?: string; dataset?: Record<string, unknown> };

/** The root machine that adopts jobs (machines/router.machine.ts JOB_STARTED / JOB_ENDED), and a way to find a child. */
export type JobHost = {
  send(event: { type: 'JOB_STARTED'; id: string; logic: AnyActorLogic; input?: unknown } | { type: 'JOB_ENDED'; id: string }): void;
  child(id: string): AnyActorRef | undefined;
};

/**
 * Where jobs are run when this router is a node of a cluster (issue 17; actors/cluster/shared-prefetch.ts).
 * The plan stays in the instance's local transaction; the share publishes it to PostgreSQL (where a study
 * triggers once cluster-wide), and runs on this node what this node claims (a lease). Each step is recorded
 * there too, so another node resumes a job whose node died; moved priors are shared for dedupHours.
 * Without a share: this node's LMDB, as always.
 */
export type PrefetchShare = {
  /** Once, at construction: how the share runs a claimed job here, and how many run now. */
  attach(service: { adopt(record: PrefetchJobRecord): void; running(): number; get(id: string): PrefetchJobRecord | undefined; forget(id: string): void }): void;
  /** Inside the instance's transaction: a job planned here, to be published (the node's outbox). */
  planned(id: string): void;
  /** After the commit: publish soon. */
  kick(): void;
  /** A step recorded; false: this node no longer holds the job's lease (another node runs it): stop here. */
  save(record: PrefetchJobRecord): Promise<boolean>;
  movedAt(key: string): Promise<MovedPrior | undefined>;
  recordMoved(key: string, moved: MovedPrior): Promise<void>;
};

/** A counting semaphore: at most `limit` holders at once, FIFO. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.free = limit;
  }
  async with<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

const now = () => new Date().toISOString();

export class PrefetchService implements PrefetchPlanner {
  readonly jobs: Database<PrefetchJobRecord, string>;
  private readonly seen: Database<SeenStudy, string>;
  private readonly moved: Database<MovedPrior, string>;
  private readonly peers: Map<string, PeerConfig>;
  private readonly slots = new Map<string, Slots>();
  /** Running jobs by id: how to stop each. */
  private readonly running = new Map<string, () => void>();
  /** (rule, check peer) pairs already warned about an AE title that is not the destination's. */
  private readonly warnedAe = new Set<string>();
  private readonly host?: JobHost;
  private readonly gates?: PeerGates;
  /** Priors being moved right now, by destination|study: a concurrent job skips them too. */
  private readonly inFlight = new Map<string, string>();
  private readonly log: Logger;
  private readonly inspect?: (event: InspectionEvent) => void;
  private readonly share?: PrefetchShare;
  private stopped = false;

  /** `host`: run jobs as children of the router's root machine; `inspect` is for jobs without one. */
  constructor(spool: Spool, peers: PeerConfig[], opts: { logger: Logger; inspect?: (event: InspectionEvent) => void; host?: JobHost; gates?: PeerGates; share?: PrefetchShare }) {
    this.jobs = spool.db.openDB<PrefetchJobRecord, string>({ name: 'prefetch-jobs' });
    this.seen = spool.db.openDB<SeenStudy, string>({ name: 'prefetch-studies-seen' });
    this.moved = spool.db.openDB<MovedPrior, string>({ name: 'prefetch-moved' });
    this.peers = new Map(peers.map((p) => [p.name, p]));
    for (const p of peers) this.slots.set(p.name, new Slots(p.maxAssociations));
    this.log = opts.logger;
    this.inspect = opts.inspect;
    this.host = opts.host;
    this.gates = opts.gates;
    this.share = opts.share;
    this.share?.attach({
      adopt: (record) => this.adopt(record),
      running: () => this.running.size,
      get: (id) => this.jobs.get(id),
      forget: (id) => void this.jobs.remove(id),
    });
  }

  /** One Q/R association to `peer` at a time per its maxAssociations, and none beside another for an exclusive peer. */
  private async withTurn<T>(peer: PeerConfig, fn: () => Promise<T>): Promise<T> {
    return this.slots.get(peer.name)!.with(async () => {
      const endTurn = (await this.gates?.acquire(peer.name)) ?? (() => {});
      try {
        return await fn();
      } finally {
        endTurn();
      }
    });
  }

  plan(requests: (PrefetchAction & { rule: string })[], instance: PlanInstance): string[] {
    if (requests.length === 0 || this.seen.get(instance.studyInstanceUid)) return [];
    const at = now();
    const ids: string[] = [];
    if (!instance.patientId) {
      this.log.warn({ study: instance.studyInstanceUid }, 'new study without PatientID: no prefetch');
    } else {
      for (const { rule, ...written } of requests) {
        const id = `${at.replace(/[-:.TZ]/g, '')}-${randomBytes(3).toString('hex')}`;
        // Placeholders are resolved now and the result recorded: a resumed job selects the same way.
        const { action, templates, notes } = resolveSelection(written, instance.dataset ?? {});
        const spec: PrefetchJobSpec = {
          id, rule, action, patientId: instance.patientId, triggeringStudy: instance.studyInstanceUid, createdAt: at,
          ...(instance.issuerOfPatientId ? { issuerOfPatientId: instance.issuerOfPatientId } : {}),
          ...(templates ? { templates } : {}),
        };
        const history = [`planned by rule '${rule}' for new study ${instance.studyInstanceUid}`, ...notes].map((step) => ({ at, step }));
        this.jobs.put(id, { ...spec, state: 'starting', updatedAt: at, attempts: 0, history });
        this.share?.planned(id);
        ids.push(id);
      }
    }
    this.seen.put(instance.studyInstanceUid, { at, jobs: ids });
    return ids;
  }

  start(jobIds: string[]): void {
    // A cluster node publishes them; whichever node claims one runs it.
    if (this.share) return this.share.kick();
    for (const id of jobIds) {
      const record = this.jobs.get(id);
      if (record && !this.running.has(id)) this.run(record);
    }
  }

  /** Unfinished jobs of a previous run carry on (a cluster node's are claimed from the shared table instead). */
  resume(): number {
    if (this.share) return 0;
    let n = 0;
    for (const { value } of this.jobs.getRange()) {
      if (FINAL_PREFETCH_STATES.includes(value.state) || this.running.has(value.id)) continue;
      this.run(value);
      n++;
    }
    return n;
  }

  list(): PrefetchJobRecord[] {
    return Array.from(this.jobs.getRange(), ({ value }) => value).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  get(id: string): PrefetchJobRecord | undefined {
    return this.jobs.get(id);
  }

  /** Resolves when every job running now has reached a final state (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  stop(): void {
    this.stopped = true;
    for (const stop of this.running.values()) stop();
    this.running.clear();
  }

  /** A job claimed from the cluster: recorded here too (the node's view), and run from its last step. */
  adopt(record: PrefetchJobRecord): void {
    if (this.stopped || this.running.has(record.id)) return;
    void this.jobs.put(record.id, record);
    this.run(record);
  }

  private run(record: PrefetchJobRecord): void {
    if (this.stopped) return;
    const peer = this.peers.get(record.action.archive);
    // No patient ID in the bindings: these lines are at info level (the job id leads to it).
    const log = this.log.child({ job: record.id, archive: record.action.archive });
    if (!peer) {
      void this.save({ ...record, state: 'failed', reason: `archive peer '${record.action.archive}' is not configured`, updatedAt: now() }, `failed: archive peer '${record.action.archive}' is not configured`);
      return;
    }
    const logic = prefetchMachine.provide({
      actors: {
        findPriors: fromPromise<FindPriorsOutput, { job: PrefetchJobSpec }>(({ input }) => this.findPriors(input.job, peer, log)),
        movePrior: fromPromise<MovePriorOutput, { job: PrefetchJobSpec; prior: PriorStep }>(({ input }) => this.movePrior(input.job, input.prior, peer, log)),
        countAtDestination: fromPromise<CountAtDestinationOutput, { job: PrefetchJobSpec; prior: PriorStep }>(({ input }) => this.countAtDestination(input.job, input.prior, log)),
      },
    });
    const { state: _s, updatedAt: _u, attempts, reason: _r, found: _f, priors, left: _l, history: _h, ...job } = record;
    const input = {
      job,
      retry: { attempts: peer.retry.attempts, initialBackoffMs: peer.retry.initialBackoffSeconds * 1000, maxBackoffMs: peer.retry.maxBackoffSeconds * 1000 },
      ...(priors ? { priors } : {}),
      attempts,
    };
    const checkPeer = record.action.skipIfDestinationHas ? this.peers.get(record.action.skipIfDestinationHas) : undefined;
    const extraSteps: string[] = [];
    if (checkPeer && checkPeer.aeTitle !== record.action.destination) {
      // Allowed (a workstation may answer queries under another AE title), but worth saying.
      const why = `destination check peer '${checkPeer.name}' has AE title ${checkPeer.aeTitle}, not the Move Destination ${record.action.destination}`;
      extraSteps.push(why);
      const key = `${record.rule}|${checkPeer.name}`;
      if (!this.warnedAe.has(key)) {
        this.warnedAe.add(key);
        log.warn({ rule: record.rule }, `${why}: make sure it is the same workstation`);
      }
    }
    let last = record;
    let notesSeen = 0;
    let chain = Promise.resolve();
    let ended = false;
    const jobId = `prefetch-${record.id}`;
    const onSnapshot = (snap: Snapshot<unknown> & { value: string | Record<string, unknown>; context: PrefetchContext }) => {
      const state = (typeof snap.value === 'string' ? snap.value : Object.keys(snap.value)[0]) as PrefetchState;
      const c = snap.context;
      const steps: string[] = extraSteps.splice(0);
      steps.push(...c.notes.slice(notesSeen));
      notesSeen = c.notes.length;
      if (c.found !== undefined && last.found === undefined) steps.push(`found ${c.found} studies, selected ${c.priors?.length ?? 0}`);
      (c.priors ?? []).forEach((p, i) => {
        if (p.state !== 'pending' && last.priors?.[i]?.state !== p.state) steps.push(`prior ${p.studyInstanceUid} ${p.state}${p.reason ? `: ${p.reason}` : ''}`);
      });
      if (state !== last.state) steps.push(state === 'waitingToRetry' ? `waitingToRetry (attempt ${c.attempts} failed: ${c.reason})` : state === 'failed' || state === 'partiallyFailed' ? `${state}: ${c.reason ?? ''}` : state);
      if (steps.length === 0) return;
      const at = now();
      last = {
        ...last, state, updatedAt: at, attempts: c.attempts,
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
        ...(c.found !== undefined ? { found: c.found } : {}),
        ...(c.priors ? { priors: c.priors } : {}),
        ...(c.left ? { left: c.left } : {}),
        history: [...last.history, ...steps.map((step) => ({ at, step }))],
      };
      const snapshotRecord = last;
      for (const step of steps) log.info({ state }, `prefetch ${step}`);
      chain = chain.then(() => this.save(snapshotRecord)).catch((err) => log.error({ err: String(err) }, 'could not record prefetch job'));
      if (FINAL_PREFETCH_STATES.includes(state) && !ended) {
        ended = true;
        void chain.then(() => {
          this.running.delete(record.id);
          this.host?.send({ type: 'JOB_ENDED', id: jobId });
        });
      }
    };
    if (this.host) {
      this.host.send({ type: 'JOB_STARTED', id: jobId, logic, input });
      const ref = this.host.child(jobId);
      if (ref) {
        ref.subscribe((snap) => onSnapshot(snap as Parameters<typeof onSnapshot>[0]));
        // Started already (during the root's transition): record where it stands now.
        onSnapshot(ref.getSnapshot());
        this.running.set(record.id, () => this.host?.send({ type: 'JOB_ENDED', id: jobId }));
        return;
      }
      // The root did not adopt it (it is stopping): the job stays recorded and resumes next start.
      log.warn('the router is stopping: prefetch job not started');
      return;
    }
    const actor = createActor(logic, { input, id: jobId, ...(this.inspect ? { inspect: this.inspect } : {}) });
    actor.subscribe((snap) => onSnapshot(snap));
    this.running.set(record.id, () => actor.stop());
    actor.start();
  }

  private async save(record: PrefetchJobRecord, step?: string): Promise<void> {
    const r = step ? { ...record, history: [...record.history, { at: record.updatedAt, step }] } : record;
    await this.jobs.put(r.id, r);
    if (this.share && !(await this.share.save(r)) && !FINAL_PREFETCH_STATES.includes(r.state)) {
      // Another node holds the lease now (this one was cut off past it): it carries on, this one stops.
      this.log.warn({ job: r.id }, 'prefetch job lease lost: another node carries it on; stopped here');
      this.running.get(r.id)?.();
      this.running.delete(r.id);
    }
  }

  private retryable(err: unknown): PrefetchStepError {
    if (err instanceof PrefetchStepError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new PrefetchStepError(message, classifyAssociationFailure(err) === 'retry');
  }

  private async findPriors(job: PrefetchJobSpec, peer: PeerConfig, log: Logger): Promise<FindPriorsOutput> {
    const keys = priorQueryKeys(job.action, { patientId: job.patientId, issuerOfPatientId: job.issuerOfPatientId, studyInstanceUid: job.triggeringStudy, at: new Date(job.createdAt) });
    const result = await this.withTurn(peer, () =>
      withQrAssociation(peer, job.action.queryModel, log, (scu) => cFind(scu, 'STUDY', keys, job.action.queryModel).done, 'find'),
    ).catch((err: unknown) => {
      throw this.retryable(err);
    });
    if (result.result !== 'success') {
      // Out of resources, a timeout or a lost association may pass; A9xx/Cxxx will not (conformance Table 4.2-43/44).
      const transient = result.status === undefined || (result.status & 0xff00) === 0xa700;
      throw new PrefetchStepError(`C-FIND failed: ${result.reason ?? result.result}`, transient);
    }
    return { matches: result.matches };
  }

  /** What the destination's Q/R SCP holds of this prior (see CountAtDestinationOutput). */
  private async countAtDestination(job: PrefetchJobSpec, prior: PriorStep, log: Logger): Promise<CountAtDestinationOutput> {
    const name = job.action.skipIfDestinationHas!;
    const peer = this.peers.get(name);
    if (!peer) return { off: `peer '${name}' is not configured` };
    let off: string | undefined;
    const result = await this.withTurn(peer, () =>
      withQrAssociation(peer, 'study-root', log, async (scu) => {
        if (!scu.contextFor(STUDY_ROOT_FIND)) {
          off = `${peer.name} (${peer.aeTitle}) accepted no Study Root C-FIND presentation context`;
          return undefined;
        }
        return countStudyInstances(scu, prior.studyInstanceUid);
      }, 'find'),
    ).catch((err: unknown) => {
      // Rejected for good (PS3.8 9.3.4: result 1, rejected-permanent): it will not answer queries from us.
      if (err instanceof AssociationRejectedError && err.rj.result === 1) {
        off = `${peer.name} (${peer.aeTitle}) rejected the association: ${err.message}`;
        return undefined;
      }
      throw err;
    });
    if (off !== undefined || result === undefined) {
      const why = off ?? `${peer.name} gave no answer`;
      log.warn({ peer: peer.name }, `destination check off for this job: ${why}`);
      return { off: why };
    }
    log.debug({ peer: peer.name, study: prior.studyInstanceUid, count: result.count, how: result.how }, 'destination count');
    return result;
  }

  private async movePrior(job: PrefetchJobSpec, prior: PriorStep, peer: PeerConfig, log: Logger): Promise<MovePriorOutput> {
    const key = `${job.action.destination}|${prior.studyInstanceUid}`;
    const previous = this.share ? await this.share.movedAt(key) : this.moved.get(key);
    if (previous && Date.now() - Date.parse(previous.at) < job.action.dedupHours * 3600_000) {
      return { state: 'skipped', reason: `moved to ${job.action.destination} at ${previous.at} (job ${previous.job})` };
    }
    const other = this.inFlight.get(key);
    if (other) return { state: 'skipped', reason: `being moved to ${job.action.destination} by job ${other}` };
    this.inFlight.set(key, job.id);
    try {
      const keys: Record<string, string> = { StudyInstanceUID: prior.studyInstanceUid, ...(job.action.queryModel === 'patient-root' ? { PatientID: job.patientId } : {}) };
      const result = await this.withTurn(peer, () =>
        withQrAssociation(peer, job.action.queryModel, log, (scu) => cMove(scu, job.action.destination, 'STUDY', keys, job.action.queryModel).done, 'move'),
      ).catch((err: unknown) => {
        throw this.retryable(err);
      });
      const base = { suboperations: result.suboperations, ...(result.status !== undefined ? { status: result.status } : {}), ...(result.reason ? { reason: result.reason } : {}) };
      if (result.result === 'success') {
        if (this.share) await this.share.recordMoved(key, { at: now(), job: job.id });
        else await this.moved.put(key, { at: now(), job: job.id });
        return { state: 'moved', ...base };
      }
      if (result.result === 'partial') return { state: 'partial', ...base };
      const transient = result.status === undefined || (result.status & 0xff00) === 0xa700;
      if (transient) throw new PrefetchStepError(`C-MOVE of ${prior.studyInstanceUid} failed: ${result.reason ?? result.result}`, true);
      return { state: 'failed', ...base };
    } finally {
      this.inFlight.delete(key);
    }
  }
}
