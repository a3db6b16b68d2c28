// Completion groups shared by the cluster's nodes (issue 17). Instances of one study may arrive at several
// nodes. Each node queues a held forward in the instance's own transaction (its outbox) and notes which
// group holds it (`cluster-completion-held`); the outbox publishes the item with `held_for` set, and in
// the same PostgreSQL transaction this upserts the group (`completion_groups`: facts counted from every
// node's `completion_members`, the quiet deadline `fires_at` as a timestamp) — or, the group having fired
// already, applies its afterFired policy to the item. A held item is never claimed (shared-queue.ts skips
// held_for). The node holding a group's lease (the first to publish it; renewed by the heartbeat) runs its
// completion machine (a child of the root, as a single router's are) and fires it: ONE transaction locks
// the row, re-checks it is due and still this node's, releases (or drops) its held items and marks it fired.
// A node killed while holding a lease: another node claims the group once the lease expires and fires it.
import type { Database } from 'lmdb';
import type { Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import { fromPromise } from 'xstate';
import type { AnyActorRef } from 'xstate';
import { completionMachine } from '../../machines/completion.machine.ts';
import type { CompletionInput, FireInput, FireOutput, FireReason } from '../../machines/completion.machine.ts';
import { checkConditions, missingRequired, modalitiesOf, requiredText } from '../../routing/completion-conditions.ts';
import type { SeriesFact } from '../../routing/completion-conditions.ts';
import type { Completion } from '../../routing/rule.types.ts';
import type { CompletionShare, JobHost, SharedMember, WaitingGroup } from '../jobs/completion.ts';
import type { QueueItem } from '../forward/outbound-queue.ts';
import type { Spool } from '../ingest/spool.ts';
import { checkout, notifyPeer } from './pg-connection.ts';

const TICK_MS = 1000;

type GroupRow = {
  id: string; rule: string; study_uid: string; series_uid: string | null; spec: Completion & { per: 'series' | 'study' };
  series: Record<string, SeriesFact>; instances: number; calling_aes: string[]; state: 'waiting' | 'fired';
  first_at: Date; opened_at: Date; last_at: Date; fires_at: Date; hard_at: Date; lease_owner: string | null; lease_until: Date | null;
  fired: { at: string; reason: FireReason; outcome: 'forwarded' | 'conditions-not-met'; forwarded: number; times: number; node: string; why?: string[] } | null;
  late: number; db_now: Date;
};

/** What publishing decided for one held item. */
export type HeldDecision = { heldFor?: string; state?: 'dropped'; reason?: string };

export class SharedCompletion implements CompletionShare {
  readonly #pool: Pool;
  readonly #node: string;
  readonly #leaseSeconds: number;
  readonly #log: Logger;
  readonly #held: Database<SharedMember, string>;
  readonly #reachable: (ok: boolean, err?: unknown) => void;
  #jobs: JobHost | undefined;
  /** Machines of the groups this node holds the lease of, with the facts they were started from. */
  readonly #live = new Map<string, { ref: AnyActorRef; facts: string }>();
  #waiting: GroupRow[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #stopped = false;

  constructor(o: { pool: Pool; node: string; leaseSeconds: number; spool: Spool; logger: Logger; reachable(ok: boolean, err?: unknown): void }) {
    this.#pool = o.pool;
    this.#node = o.node;
    this.#leaseSeconds = o.leaseSeconds;
    this.#log = o.logger;
    this.#reachable = o.reachable;
    this.#held = o.spool.db.openDB<SharedMember, string>({ name: 'cluster-completion-held' });
  }

  /** Where the group machines live (the root's JOB_STARTED / JOB_ENDED). */
  attach(jobs: JobHost): void {
    this.#jobs = jobs;
  }

  hold(itemId: string, member: SharedMember): void {
    this.#held.put(itemId, member);
  }

  /** Inside the outbox's LMDB transaction, once its items are published. */
  forget(itemIds: string[]): void {
    for (const id of itemIds) if (this.#held.get(id)) this.#held.remove(id);
  }

  /**
   * Inside the outbox's PostgreSQL transaction, before its items are inserted: each held item's group is
   * created or joined (a member counts once, whichever node and however many peers), and the item is held
   * for it while it waits; after it fired, the rule's afterFired decides.
   */
  async publish(client: PoolClient, items: QueueItem[]): Promise<Map<string, HeldDecision>> {
    const out = new Map<string, HeldDecision>();
    const byGroup = new Map<string, { member: SharedMember; item: QueueItem }[]>();
    for (const item of items) {
      const member = this.#held.get(item.id);
      if (member) byGroup.set(member.group, [...(byGroup.get(member.group) ?? []), { member, item }]);
    }
    // Group rows are locked in id order: two nodes publishing members of the same groups never deadlock.
    for (const [id, entries] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const first = entries[0].member;
      const t = first.completion.trigger;
      await client.query(
        `INSERT INTO completion_groups (id, rule, study_uid, series_uid, spec, first_at, opened_at, last_at, fires_at, hard_at, lease_owner, lease_until)
         VALUES ($1, $2, $3, $4, $5, now(), now(), now(), now() + make_interval(secs => $6), now() + make_interval(secs => $7), $8, now() + make_interval(secs => $9))
         ON CONFLICT (id) DO NOTHING`,
        [id, first.rule, first.studyInstanceUid, first.per === 'series' ? first.seriesInstanceUid : null, JSON.stringify({ ...first.completion, per: first.per }),
          Math.min(t.quietSeconds, t.maxWaitSeconds), t.maxWaitSeconds, this.#node, this.#leaseSeconds],
      );
      const g = (await client.query<GroupRow>('SELECT *, now() AS db_now FROM completion_groups WHERE id = $1 FOR UPDATE', [id])).rows[0];
      const series = { ...g.series };
      const callingAes = [...g.calling_aes];
      let added = 0;
      let late = 0;
      let reopen = false;
      const seen = new Set<string>();
      for (const { member, item } of entries) {
        if (!seen.has(member.sopInstanceUid)) {
          seen.add(member.sopInstanceUid);
          const inserted = await client.query(
            'INSERT INTO completion_members (group_id, sop_uid, series_uid, node) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
            [id, member.sopInstanceUid, member.seriesInstanceUid, this.#node],
          );
          const prev = series[member.seriesInstanceUid];
          const modality = member.modality || prev?.modality;
          const description = member.description || prev?.description;
          series[member.seriesInstanceUid] = { ...(modality ? { modality } : {}), ...(description ? { description } : {}), instances: (prev?.instances ?? 0) + (inserted.rowCount ? 1 : 0) };
          if (inserted.rowCount) added++;
          if (!callingAes.includes(member.callingAeTitle)) callingAes.push(member.callingAeTitle);
          if (g.state === 'fired') late++;
        }
        if (g.state === 'waiting' || reopen) {
          out.set(item.id, { heldFor: id });
        } else if (t.afterFired === 'resend-study') {
          // Waiting again for what arrives now (members delivered before are not sent again by a cluster node).
          reopen = true;
          out.set(item.id, { heldFor: id });
        } else if (t.afterFired === 'new-instances' && g.fired?.outcome === 'forwarded') {
          out.set(item.id, {});
        } else {
          out.set(item.id, { state: 'dropped', reason: t.afterFired === 'ignore' ? 'arrived after its group fired (afterFired: ignore)' : 'arrived after its group fired without forwarding' });
        }
      }
      const waiting = g.state === 'waiting' || reopen;
      await client.query(
        `UPDATE completion_groups SET series = $2, instances = instances + $3, calling_aes = $4, late = late + $5,
                state = CASE WHEN $6 THEN 'waiting' ELSE state END,
                opened_at = CASE WHEN $7 THEN now() ELSE opened_at END,
                hard_at = CASE WHEN $7 THEN now() + make_interval(secs => $9) ELSE hard_at END,
                last_at = CASE WHEN $6 THEN now() ELSE last_at END,
                fires_at = CASE WHEN $6 THEN least(now() + make_interval(secs => $8), CASE WHEN $7 THEN now() + make_interval(secs => $9) ELSE hard_at END) ELSE fires_at END,
                lease_owner = CASE WHEN $7 THEN $10 ELSE lease_owner END,
                lease_until = CASE WHEN $7 THEN now() + make_interval(secs => $11) ELSE lease_until END
          WHERE id = $1`,
        [id, JSON.stringify(series), added, JSON.stringify(callingAes), late, waiting, reopen, t.quietSeconds, t.maxWaitSeconds, this.#node, this.#leaseSeconds],
      );
      if (late > 0) this.#log.info({ group: id, instances: late, policy: t.afterFired, reopened: reopen }, `instances arrived after their ${first.per} fired`);
    }
    return out;
  }

  /** Claims and fires start once the node has joined the cluster. */
  start(): void {
    this.#timer = setInterval(() => void this.#tick(), TICK_MS);
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    // The root stops its children; the groups stay in PostgreSQL (another node claims them once the leases are freed).
    this.#live.clear();
  }

  /** Group leases the heartbeat renews. */
  held(): string[] {
    return [...this.#live.keys()];
  }

  waiting(now = Date.now()): WaitingGroup[] {
    return this.#waiting.map((g) => {
      const facts = { series: g.series, instances: g.instances, callingAes: g.calling_aes };
      const machine = this.#live.get(g.id)?.ref.getSnapshot() as { value?: unknown } | undefined;
      return {
        id: g.id, rule: g.rule, per: g.spec.per, studyInstanceUid: g.study_uid, ...(g.series_uid ? { seriesInstanceUid: g.series_uid } : {}),
        instances: g.instances, series: Object.keys(g.series).length, modalities: modalitiesOf(facts), firstAt: g.first_at.toISOString(), lastAt: g.last_at.toISOString(),
        firesAt: g.fires_at.toISOString(), hardLimitAt: g.hard_at.toISOString(), secondsLeft: Math.max(0, Math.ceil((g.fires_at.getTime() - now) / 1000)),
        missingRequired: missingRequired(g.spec.trigger.requiredSeries, g.series).map(requiredText),
        machine: machine ? JSON.stringify(machine.value) : `lease: ${g.lease_owner ?? 'none'}`, reopened: g.fired !== null,
      };
    });
  }

  /** Free leases (new from a node that died, or expired) are taken; this node's groups get machines with their current facts. */
  async #tick(): Promise<void> {
    if (this.#busy || this.#stopped || !this.#jobs) return;
    this.#busy = true;
    try {
      const taken = await this.#pool.query<{ id: string; was: string | null }>(
        `WITH c AS (SELECT id, lease_owner FROM completion_groups WHERE state = 'waiting' AND (lease_owner IS NULL OR lease_until < now())
                     ORDER BY fires_at LIMIT 100 FOR UPDATE SKIP LOCKED)
         UPDATE completion_groups g SET lease_owner = $1, lease_until = now() + make_interval(secs => $2) FROM c WHERE g.id = c.id
         RETURNING g.id, c.lease_owner AS was`,
        [this.#node, this.#leaseSeconds],
      );
      for (const r of taken.rows) {
        if (r.was && r.was !== this.#node) this.#log.warn({ group: r.id, from: r.was }, 'completion group taken over from a node whose lease expired: this node fires it');
      }
      const { rows } = await this.#pool.query<GroupRow>(`SELECT *, now() AS db_now FROM completion_groups WHERE state = 'waiting' ORDER BY fires_at`);
      this.#reachable(true);
      this.#waiting = rows;
      const mine = new Map(rows.filter((g) => g.lease_owner === this.#node).map((g) => [g.id, g]));
      for (const id of [...this.#live.keys()]) if (!mine.has(id)) this.#end(id);
      for (const g of mine.values()) {
        const facts = `${g.instances}|${g.fires_at.toISOString()}|${g.hard_at.toISOString()}`;
        const live = this.#live.get(g.id);
        if (live?.facts === facts) continue;
        if (live) this.#end(g.id);
        this.#start(g, facts);
      }
    } catch (err) {
      this.#reachable(false, err);
    } finally {
      this.#busy = false;
    }
  }

  #start(g: GroupRow, facts: string): void {
    const now = g.db_now.getTime();
    const input: CompletionInput = {
      group: g.id, rule: g.rule, per: g.spec.per, studyInstanceUid: g.study_uid, ...(g.series_uid ? { seriesInstanceUid: g.series_uid } : {}),
      quietMs: g.spec.trigger.quietSeconds * 1000, ...(g.spec.trigger.requiredSeries ? { requiredSeries: g.spec.trigger.requiredSeries } : {}),
      series: g.series, instances: g.instances, quietLeftMs: g.fires_at.getTime() - now, hardLeftMs: g.hard_at.getTime() - now,
      firesAt: g.fires_at.toISOString(), hardLimitAt: g.hard_at.toISOString(),
    };
    const logic = completionMachine.provide({ actors: { fire: fromPromise<FireOutput, FireInput>(({ input: i }) => this.fire(i.group, i.reason)) } });
    const ref = this.#jobs!.start(g.id, logic, input);
    if (!ref) return;
    this.#live.set(g.id, { ref, facts });
    const sub = ref.subscribe({
      next: (snap: { status: string }) => {
        if (snap.status !== 'done') return;
        sub.unsubscribe();
        // Fired, or not due after all (a member published by another node moved the deadline): the next
        // tick starts it again from the row if it is still waiting.
        setImmediate(() => {
          if (this.#live.get(g.id)?.ref === ref) this.#end(g.id);
        });
      },
      error: () => this.#live.delete(g.id),
    });
  }

  #end(id: string): void {
    this.#live.delete(id);
    this.#jobs?.end(id);
  }

  /**
   * ONE transaction: the group, locked, must still be waiting, this node's, and due (the deadline is the
   * row's: a member published by another node may have moved it); its held items are released (or
   * dropped when whenComplete does not hold) and it is marked fired.
   */
  async fire(id: string, reason: FireReason): Promise<FireOutput> {
    const client = await checkout(this.#pool);
    const peers = new Set<string>();
    try {
      await client.query('BEGIN');
      const g = (await client.query<GroupRow>('SELECT *, now() AS db_now FROM completion_groups WHERE id = $1 FOR UPDATE', [id])).rows[0];
      const not = async (note: string): Promise<FireOutput> => {
        await client.query('ROLLBACK');
        return { fired: false, forwarded: 0, note };
      };
      if (!g || g.state !== 'waiting') return await not(g ? 'already fired' : 'no such group');
      if (g.lease_owner !== this.#node) return await not(`lease held by ${g.lease_owner ?? 'nobody'}`);
      const now = g.db_now.getTime();
      const due = reason === 'hard-limit' ? g.hard_at.getTime() <= now
        : reason === 'required-series' ? missingRequired(g.spec.trigger.requiredSeries, g.series).length === 0
        : g.fires_at.getTime() <= now;
      if (!due) return await not('not yet: the deadline moved');
      const facts = { series: g.series, instances: g.instances, callingAes: g.calling_aes };
      const check = checkConditions(g.spec.whenComplete, facts);
      const { rows } = check.ok
        ? await client.query<{ peer: string; node: string }>(`UPDATE queue_items SET held_for = NULL WHERE held_for = $1 AND state = 'pending' RETURNING peer, node`, [id])
        : await client.query<{ peer: string; node: string }>(
          `UPDATE queue_items SET held_for = NULL, state = 'dropped', done_at = now(), last_error = $2 WHERE held_for = $1 AND state = 'pending' RETURNING peer, node`,
          [id, `whenComplete does not hold: ${check.failed.join('; ')}`],
        );
      const fired = {
        at: new Date(now).toISOString(), reason, outcome: check.ok ? 'forwarded' : 'conditions-not-met', forwarded: check.ok ? rows.length : 0,
        times: (g.fired?.times ?? 0) + 1, node: this.#node, ...(check.ok ? {} : { why: check.failed }),
      };
      await client.query(`UPDATE completion_groups SET state = 'fired', fired = $2, lease_owner = NULL, lease_until = NULL WHERE id = $1`, [id, JSON.stringify(fired)]);
      if (check.ok) {
        for (const key of new Set(rows.map((r) => `${r.peer}\n${r.node}`))) {
          const [peer, node] = key.split('\n');
          peers.add(peer);
          await notifyPeer((sql, params) => client.query(sql, params), peer, node);
        }
      }
      await client.query('COMMIT');
      const fields = {
        rule: g.rule, study: g.study_uid, ...(g.series_uid ? { series: g.series_uid } : {}), reason, instances: g.instances,
        seriesCount: Object.keys(g.series).length, modalities: modalitiesOf(facts), forwarded: fired.forwarded, node: this.#node,
      };
      const what = `${g.spec.per} complete`;
      if (!check.ok) this.#log.info({ ...fields, why: check.failed }, `${what}: whenComplete does not hold, nothing forwarded`);
      else if (reason === 'hard-limit') this.#log.warn({ ...fields, maxWaitSeconds: g.spec.trigger.maxWaitSeconds }, `${what}: hard limit reached, forwarded although instances may still be arriving`);
      else this.#log.info(fields, `${what}: forwarded as one batch`);
      this.#reachable(true);
      return { fired: true, forwarded: fired.forwarded };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      this.#reachable(false, err);
      throw err;
    } finally {
      client.release();
    }
  }
}
