// Series/study completion in the world (issue 8): forwards of a rule with a `trigger` are held as
// members of a durable group instead of being queued; the group's completion machine (machines/
// completion.machine.ts, a child of the root) counts down, and firing enqueues every member in ONE
// LMDB transaction that first re-checks the group is still waiting, so a restart neither loses a
// pending group nor fires it twice. Sub-databases of the spool's environment:
//   completion-groups   [rule, study, series|''] → GroupRecord (waiting or fired; fired ones pruned by retention)
//   completion-members  [rule, study, series|'', sop] → Member (what the queue items need, in arrival order)
//   completion-held     sop → group id (dupSort): instances of waiting groups, which retention must keep
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { createActor, fromPromise } from 'xstate';
import type { AnyActorLogic, AnyActorRef } from 'xstate';
import { completionMachine } from '../../machines/completion.machine.ts';
import type { CompletionInput, FireInput, FireOutput, FireReason, InstanceAdded } from '../../machines/completion.machine.ts';
import { checkConditions, missingRequired, modalitiesOf, requiredText } from '../../routing/completion-conditions.ts';
import type { SeriesFact } from '../../routing/completion-conditions.ts';
import type { Completion, Forward, Modification } from '../../routing/rule.types.ts';
import { isSkipped, queueItemFor } from '../forward/outbound-queue.ts';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import type { InstanceRecord, Spool } from '../ingest/spool.ts';
import type { DomainEvents } from '../observe/domain-events.ts';

type GroupKey = [string, string, string];

export type GroupRecord = Completion & {
  /** The actor id: completion:<rule>:<study>[:<series>]. */
  id: string;
  rule: string;
  studyInstanceUid: string;
  seriesInstanceUid?: string;
  state: 'waiting' | 'fired';
  /** ISO 8601: first instance ever; when it (re)started waiting (the hard limit counts from here); last instance. */
  firstAt: string;
  openedAt: string;
  lastAt: string;
  series: Record<string, SeriesFact>;
  instances: number;
  callingAes: string[];
  nextOrder: number;
  /** The last firing. */
  fired?: { at: string; reason: FireReason; outcome: 'forwarded' | 'conditions-not-met'; forwarded: number; times: number; why?: string[] };
  /** Instances that arrived after it fired (whatever afterFired did with them). */
  late: number;
};

export type Member = {
  order: number;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  receivedAt: string;
  forwards: { peer: string; failover?: string; modifications: Modification[] }[];
};

/** What hold() did inside the instance's transaction; acted on once it committed. */
export type HoldNote = { group: string; sop: string; action: 'start' | 'added' | 'late-forwarded' | 'late-ignored' | 'late-not-forwarded' | 'shared'; event?: InstanceAdded; peers?: string[] };

/** A member of a group as a cluster node publishes it with its held queue items (actors/cluster/shared-completion.ts). */
export type SharedMember = {
  group: string; rule: string; per: 'series' | 'study'; completion: Completion; studyInstanceUid: string; seriesInstanceUid: string;
  sopInstanceUid: string; modality?: string; description?: string; callingAeTitle: string; receivedAt: string;
};

/**
 * Where groups live when this router is a node of a cluster (issue 17): the held forwards are queued in the
 * instance's own transaction (the node's outbox) marked as held for their group; the share publishes them
 * with the membership to PostgreSQL, where the group's facts count every node's members, its items are not
 * claimed until it fires, and the node holding its lease fires it. Without a share: this node's LMDB.
 */
export type CompletionShare = {
  /** Inside the instance's transaction: local queue item `itemId` is held for `member.group`. */
  hold(itemId: string, member: SharedMember): void;
  /** Groups waiting cluster-wide, for the inspector (the last read). */
  waiting(now?: number): WaitingGroup[];
};

/** The narrow interface the acceptor uses (RoutingRuntime.completion); the rest comes by the instance-stored event. */
export type CompletionHolder = {
  hold(record: InstanceRecord, forwards: Forward[], facts: { seriesDescription?: string }): HoldNote[];
};

/** Where the group machines live: the root machine's JOB_STARTED / JOB_ENDED, or standalone actors. */
export type JobHost = { start(id: string, logic: AnyActorLogic, input: unknown): AnyActorRef | undefined; end(id: string): void };

export type WaitingGroup = {
  id: string; rule: string; per: 'series' | 'study'; studyInstanceUid: string; seriesInstanceUid?: string;
  instances: number; series: number; modalities: string[]; firstAt: string; lastAt: string;
  firesAt: string; hardLimitAt: string; secondsLeft: number; missingRequired: string[]; machine: string; reopened: boolean;
};

const standalone: JobHost = {
  start: (id, logic, input) => createActor(logic, { id, input }).start(),
  end: () => {},
};

const groupId = (k: GroupKey) => ['completion', k[0], k[1], ...(k[2] ? [k[2]] : [])].join(':');
const keyOf = (id: string): GroupKey => {
  const [, rule, study, series] = id.split(':');
  return [rule, study, series ?? ''];
};
const iso = (ms: number) => new Date(ms).toISOString();

export class CompletionTracker implements CompletionHolder {
  #root: RootDatabase;
  #groups: Database<GroupRecord, GroupKey>;
  #members: Database<Member, [string, string, string, string]>;
  #held: Database<string, string>;
  #spool: Spool;
  #queue: OutboundQueue;
  #log: Logger;
  #wake: (peers: string[]) => void;
  #jobs: JobHost;
  #live = new Map<string, AnyActorRef>();
  #stopped = false;
  #share: CompletionShare | undefined;

  constructor(spool: Spool, queue: OutboundQueue, opts: { logger: Logger; wake: (peers: string[]) => void; jobs?: JobHost; share?: CompletionShare }) {
    this.#root = spool.db;
    this.#groups = spool.db.openDB<GroupRecord, GroupKey>({ name: 'completion-groups' });
    this.#members = spool.db.openDB<Member, [string, string, string, string]>({ name: 'completion-members' });
    this.#held = spool.db.openDB<string, string>({ name: 'completion-held', dupSort: true, encoding: 'ordered-binary' });
    this.#spool = spool;
    this.#queue = queue;
    this.#log = opts.logger;
    this.#wake = opts.wake;
    this.#jobs = opts.jobs ?? standalone;
    this.#share = opts.share;
  }

  /**
   * Inside the instance's LMDB transaction: record it as a member of its rule's group (created on the
   * first instance), or apply the rule's afterFired policy when the group already fired.
   */
  hold(record: InstanceRecord, forwards: Forward[], facts: { seriesDescription?: string }): HoldNote[] {
    const notes: HoldNote[] = [];
    const byRule = new Map<string, Forward[]>();
    for (const f of forwards) if (f.completion) byRule.set(f.rule, [...(byRule.get(f.rule) ?? []), f]);
    const now = new Date().toISOString();
    if (this.#share) return this.#holdShared(record, byRule, facts, now);
    for (const [rule, fs] of byRule) {
      const completion = fs[0].completion!;
      const per = completion.trigger.per;
      const key: GroupKey = [rule, record.studyInstanceUid, per === 'series' ? record.seriesInstanceUid : ''];
      const id = groupId(key);
      const mkey: [string, string, string, string] = [...key, record.sopInstanceUid];
      const existing = this.#groups.get(key);
      const known = this.#members.get(mkey);
      const g: GroupRecord = existing
        ? { ...existing, series: { ...existing.series } }
        : {
            ...completion, id, rule, studyInstanceUid: record.studyInstanceUid, ...(per === 'series' ? { seriesInstanceUid: record.seriesInstanceUid } : {}),
            state: 'waiting', firstAt: now, openedAt: now, lastAt: now, series: {}, instances: 0, callingAes: [], nextOrder: 0, late: 0,
          };
      // Facts: a duplicate SOP Instance UID replaces its member, it is not one more instance.
      const prev = g.series[record.seriesInstanceUid];
      const description = facts.seriesDescription?.trim() || prev?.description;
      const modality = record.modality?.trim() || prev?.modality;
      g.series[record.seriesInstanceUid] = { ...(modality ? { modality } : {}), ...(description ? { description } : {}), instances: (prev?.instances ?? 0) + (known ? 0 : 1) };
      if (!known) g.instances++;
      if (!g.callingAes.includes(record.callingAeTitle)) g.callingAes = [...g.callingAes, record.callingAeTitle];
      const member: Member = {
        order: known?.order ?? g.nextOrder++, sopInstanceUid: record.sopInstanceUid, seriesInstanceUid: record.seriesInstanceUid, receivedAt: record.receivedAt,
        forwards: fs.map((f) => ({ peer: f.peer, ...(f.failover ? { failover: f.failover } : {}), modifications: f.modifications })),
      };
      this.#members.put(mkey, member);
      const event: InstanceAdded = { type: 'INSTANCE_ADDED', at: now, seriesInstanceUid: record.seriesInstanceUid, ...(modality ? { modality } : {}), ...(description ? { description } : {}) };
      if (g.state === 'waiting') {
        g.lastAt = now;
        this.#held.put(record.sopInstanceUid, id);
        notes.push({ group: id, sop: record.sopInstanceUid, action: existing ? 'added' : 'start', event });
      } else {
        g.late++;
        const policy = g.trigger.afterFired;
        if (policy === 'resend-study') {
          g.state = 'waiting';
          g.openedAt = now;
          g.lastAt = now;
          for (const { value } of this.#memberRange(key)) this.#held.put(value.sopInstanceUid, id);
          notes.push({ group: id, sop: record.sopInstanceUid, action: 'start' });
        } else if (policy === 'new-instances' && g.fired?.outcome === 'forwarded') {
          for (const f of member.forwards) this.#queue.enqueue(queueItemFor(f, rule, record));
          notes.push({ group: id, sop: record.sopInstanceUid, action: 'late-forwarded', peers: member.forwards.map((f) => f.peer) });
        } else {
          notes.push({ group: id, sop: record.sopInstanceUid, action: policy === 'ignore' ? 'late-ignored' : 'late-not-forwarded' });
        }
      }
      this.#groups.put(key, g);
    }
    return notes;
  }

  /** A cluster node: the forwards are queued now, held for their group until it fires cluster-wide. */
  #holdShared(record: InstanceRecord, byRule: Map<string, Forward[]>, facts: { seriesDescription?: string }, now: string): HoldNote[] {
    const notes: HoldNote[] = [];
    for (const [rule, fs] of byRule) {
      const completion = fs[0].completion!;
      const per = completion.trigger.per;
      const id = groupId([rule, record.studyInstanceUid, per === 'series' ? record.seriesInstanceUid : '']);
      const description = facts.seriesDescription?.trim();
      const modality = record.modality?.trim();
      const member: SharedMember = {
        group: id, rule, per, completion, studyInstanceUid: record.studyInstanceUid, seriesInstanceUid: record.seriesInstanceUid, sopInstanceUid: record.sopInstanceUid,
        ...(modality ? { modality } : {}), ...(description ? { description } : {}), callingAeTitle: record.callingAeTitle, receivedAt: now,
      };
      const peers: string[] = [];
      for (const f of fs) {
        const queued = this.#queue.enqueue(queueItemFor(f, rule, record));
        if (isSkipped(queued)) continue;
        this.#share!.hold(queued.id, member);
        peers.push(f.peer);
      }
      notes.push({ group: id, sop: record.sopInstanceUid, action: 'shared', peers });
    }
    return notes;
  }

  /**
   * Acts on every committed instance's completion notes, as the domain events tell (the acceptor publishes
   * them with the instance-stored event once its transaction is durable).
   */
  follow(events: DomainEvents): Subscription {
    return events.of('instance-stored').subscribe((e) => {
      if (e.completion.length === 0) return;
      // A subscriber's throw would surface as an uncaught error (domain-events.ts): log it here.
      try {
        this.afterCommit(e.completion);
      } catch (err) {
        this.#log.error({ err, sopInstanceUid: e.sopInstanceUid }, 'completion tracking failed for an instance; its group resumes at the next start');
      }
    });
  }

  /** After the instance's transaction committed: start or feed the group machines, wake peers. */
  afterCommit(notes: HoldNote[]): void {
    for (const n of notes) {
      const g = this.#groups.get(keyOf(n.group));
      const log = { rule: g?.rule, study: g?.studyInstanceUid, series: g?.seriesInstanceUid, sopInstanceUid: n.sop };
      if (n.action === 'start') {
        if (g && g.fired) this.#log.info({ ...log, policy: 'resend-study' }, `${g.trigger.per} got a new instance after it fired: waiting again, it will be sent again when complete`);
        if (g) this.#start(g);
      } else if (n.action === 'added') {
        const ref = this.#live.get(n.group);
        if (ref) ref.send(n.event!);
        else if (g) this.#start(g);
      } else if (n.action === 'late-forwarded') {
        this.#log.info({ ...log, policy: 'new-instances', peers: n.peers }, `instance arrived after its ${g?.trigger.per} fired: forwarded on its own`);
        this.#wake(n.peers ?? []);
      } else if (n.action === 'shared') {
        // The outbox publishes the held items with the membership (the cluster's wake is its kick).
        this.#wake(n.peers ?? []);
      } else if (n.action === 'late-ignored') {
        this.#log.info({ ...log, policy: 'ignore' }, `instance arrived after its ${g?.trigger.per} fired: stored, not forwarded (afterFired: ignore)`);
      } else {
        this.#log.info({ ...log, policy: 'new-instances' }, `instance arrived after its ${g?.trigger.per} fired without forwarding (whenComplete did not hold): not forwarded`);
      }
    }
  }

  /** The groups still waiting (a previous run's too) get their machines, with the time left on their clocks. */
  resume(): number {
    let n = 0;
    for (const { value } of this.#groups.getRange()) {
      if (value.state !== 'waiting' || this.#live.has(value.id)) continue;
      this.#start(value);
      n++;
    }
    return n;
  }

  /**
   * Fire a group: ONE transaction re-checks that it is waiting, evaluates whenComplete on its facts,
   * enqueues every member (arrival order, each to each of its forwards, from the file the spool holds
   * now) and marks it fired. A group that is no longer waiting is left alone (fired: false).
   */
  async fire(id: string, reason: FireReason): Promise<FireOutput> {
    if (this.#stopped) throw new Error('completion tracker stopped');
    const key = keyOf(id);
    const peers = new Set<string>();
    const result = await this.#root.transaction(() => {
      const g = this.#groups.get(key);
      if (!g || g.state !== 'waiting') return { out: { fired: false, forwarded: 0, note: g ? 'already fired' : 'no such group' } as FireOutput };
      const members = Array.from(this.#memberRange(key), ({ value }) => value).sort((a, b) => a.order - b.order);
      const check = checkConditions(g.whenComplete, g);
      let forwarded = 0;
      let gone = 0;
      for (const m of members) {
        this.#held.remove(m.sopInstanceUid, id);
        if (!check.ok) continue;
        const record = this.#spool.get(m.sopInstanceUid);
        if (!record) {
          gone++;
          continue;
        }
        for (const f of m.forwards) {
          this.#queue.enqueue(queueItemFor(f, g.rule, record));
          peers.add(f.peer);
          forwarded++;
        }
      }
      const at = new Date().toISOString();
      const fired: GroupRecord['fired'] = {
        at, reason, outcome: check.ok ? 'forwarded' : 'conditions-not-met', forwarded, times: (g.fired?.times ?? 0) + 1, ...(check.ok ? {} : { why: check.failed }),
      };
      this.#groups.put(key, { ...g, state: 'fired', fired });
      const note = gone > 0 ? `${gone} instances no longer in the spool` : undefined;
      return { g, members: members.length, out: { fired: true, forwarded, ...(note ? { note } : {}) } as FireOutput, check };
    });
    if (result.g) {
      const g = result.g;
      const fields = {
        rule: g.rule, study: g.studyInstanceUid, ...(g.seriesInstanceUid ? { series: g.seriesInstanceUid } : {}), reason,
        instances: result.members, seriesCount: Object.keys(g.series).length, modalities: modalitiesOf(g), forwarded: result.out.forwarded,
        ...(result.out.note ? { note: result.out.note } : {}),
      };
      const what = `${g.trigger.per} complete`;
      if (!result.check.ok) this.#log.info({ ...fields, why: result.check.failed }, `${what}: whenComplete does not hold, nothing forwarded`);
      else if (reason === 'hard-limit') this.#log.warn({ ...fields, maxWaitSeconds: g.trigger.maxWaitSeconds }, `${what}: hard limit reached, forwarded although instances may still be arriving`);
      else this.#log.info(fields, `${what}: forwarded as one batch`);
      if (peers.size > 0) this.#wake([...peers]);
    }
    return result.out;
  }

  /** Waiting groups for the inspector, soonest first. */
  waiting(now = Date.now()): WaitingGroup[] {
    if (this.#share) return this.#share.waiting(now);
    const out: WaitingGroup[] = [];
    for (const { value: g } of this.#groups.getRange()) {
      if (g.state !== 'waiting') continue;
      const { firesAt, hardLimitAt } = this.#deadlines(g);
      const machine = this.#live.get(g.id)?.getSnapshot() as { value?: unknown } | undefined;
      out.push({
        id: g.id, rule: g.rule, per: g.trigger.per, studyInstanceUid: g.studyInstanceUid, ...(g.seriesInstanceUid ? { seriesInstanceUid: g.seriesInstanceUid } : {}),
        instances: g.instances, series: Object.keys(g.series).length, modalities: modalitiesOf(g), firstAt: g.firstAt, lastAt: g.lastAt,
        firesAt: iso(firesAt), hardLimitAt: iso(hardLimitAt), secondsLeft: Math.max(0, Math.ceil((firesAt - now) / 1000)),
        missingRequired: missingRequired(g.trigger.requiredSeries, g.series).map(requiredText),
        machine: machine ? JSON.stringify(machine.value) : 'not running', reopened: g.fired !== undefined,
      });
    }
    return out.sort((a, b) => a.firesAt.localeCompare(b.firesAt));
  }

  get(id: string): GroupRecord | undefined {
    return this.#groups.get(keyOf(id));
  }

  /** Is this instance a member of a waiting group? (retention keeps it) */
  holds(sopInstanceUid: string): boolean {
    return this.#held.getValuesCount(sopInstanceUid) > 0;
  }

  /** Forget fired groups (and their members) that fired more than keepMs ago. */
  async prune(keepMs: number, now = Date.now()): Promise<number> {
    const old = Array.from(this.#groups.getRange(), ({ key, value }) => ({ key, value })).filter(
      ({ value }) => value.state === 'fired' && value.fired !== undefined && now - Date.parse(value.fired.at) >= keepMs,
    );
    if (old.length === 0) return 0;
    return this.#root.transaction(() => {
      let n = 0;
      for (const { key } of old) {
        const g = this.#groups.get(key);
        if (!g || g.state !== 'fired') continue; // reopened meanwhile
        for (const { key: mkey } of this.#memberRange(key)) this.#members.remove(mkey);
        this.#groups.remove(key);
        n++;
      }
      return n;
    });
  }

  /** Machines stop (the groups stay durable and resume at the next start). */
  stop(): void {
    this.#stopped = true;
    for (const [id, ref] of this.#live) {
      if (this.#jobs === standalone) ref.stop();
      else this.#jobs.end(id);
    }
    this.#live.clear();
  }

  #start(g: GroupRecord): void {
    if (this.#stopped || this.#live.has(g.id)) return;
    const { quietAt, firesAt, hardLimitAt } = this.#deadlines(g);
    const now = Date.now();
    const input: CompletionInput = {
      group: g.id, rule: g.rule, per: g.trigger.per, studyInstanceUid: g.studyInstanceUid, ...(g.seriesInstanceUid ? { seriesInstanceUid: g.seriesInstanceUid } : {}),
      quietMs: g.trigger.quietSeconds * 1000, ...(g.trigger.requiredSeries ? { requiredSeries: g.trigger.requiredSeries } : {}),
      series: g.series, instances: g.instances, quietLeftMs: quietAt - now, hardLeftMs: hardLimitAt - now, firesAt: iso(firesAt), hardLimitAt: iso(hardLimitAt),
    };
    const logic = completionMachine.provide({ actors: { fire: fromPromise<FireOutput, FireInput>(({ input: i }) => this.fire(i.group, i.reason)) } });
    const ref = this.#jobs.start(g.id, logic, input);
    if (!ref) return; // the root is stopping: the group resumes at the next start
    this.#live.set(g.id, ref);
    const sub = ref.subscribe({
      next: (snap: { status: string }) => {
        if (snap.status !== 'done') return;
        sub.unsubscribe();
        // Leave the tree after this transition has finished.
        setImmediate(() => {
          if (this.#live.get(g.id) !== ref) return;
          this.#live.delete(g.id);
          this.#jobs.end(g.id);
        });
      },
      error: () => this.#live.delete(g.id),
    });
  }

  #deadlines(g: GroupRecord): { quietAt: number; firesAt: number; hardLimitAt: number } {
    const quietAt = Date.parse(g.lastAt) + g.trigger.quietSeconds * 1000;
    const hardLimitAt = Date.parse(g.openedAt) + g.trigger.maxWaitSeconds * 1000;
    return { quietAt, firesAt: Math.min(quietAt, hardLimitAt), hardLimitAt };
  }

  #memberRange(key: GroupKey) {
    return this.#members.getRange({ start: [...key, ''], end: [...key, '\uffff'] });
  }
}
