// The cluster's instance directory (issue 17): which instance lives on which node (`instances`). Each
// instance this node stores (the instance-stored domain event, given once it is durable) is published by
// the outbox's pass AFTER the queue items waiting then, so a node that finds an instance in the directory
// also finds its forwards in the shared queue (a storage commitment check on another node never takes
// "no queue item" for "delivered" while the items are still in this node's outbox). The event is not
// durable: a crash between the commit and the publish is caught at the next start, where a directory that
// does not count this node's spool is rewritten from it. An instance retention removes leaves the
// directory the same way, by the next pass (the spool's onRemoved: published, it is no longer in the spool).
import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './pg-connection.ts';
import type { Subscription } from 'rxjs';
import type { Logger } from 'pino';
import type { Database } from 'lmdb';
import type { InstanceRecord, Spool } from '../ingest/spool.ts';
import type { DomainEvents } from '../observe/domain-events.ts';

/** An instance on another node, as a storage commitment check needs it. */
export type InstanceElsewhere = { node: string; sopClassUid: string; waiting?: string };

type Entry = { sop_uid: string; sop_class_uid: string; study_uid: string; series_uid: string; path: string; received_at: string };

const BATCH = 1000;

/** A spool row as the directory holds it. */
function entryOf(r: InstanceRecord): Entry {
  return { sop_uid: r.sopInstanceUid, sop_class_uid: r.sopClassUid, study_uid: r.studyInstanceUid, series_uid: r.seriesInstanceUid, path: r.path, received_at: r.receivedAt };
}

export class InstanceDirectory {
  readonly #pool: Pool;
  readonly #node: string;
  readonly #spool: Spool;
  readonly #log: Logger;
  /** The spool's index of instances, read directly for the start-up rewrite (getRange is lazy). */
  readonly #index: Database<InstanceRecord, string>;
  #pending = new Set<string>();

  constructor(o: { pool: Pool; node: string; spool: Spool; logger: Logger }) {
    this.#pool = o.pool;
    this.#node = o.node;
    this.#spool = o.spool;
    this.#log = o.logger;
    this.#index = o.spool.db.openDB<InstanceRecord, string>({ name: 'instances' });
  }

  /** Each stored instance, and each one removed, is published by the outbox's next pass (`kick`). */
  follow(events: DomainEvents, kick: () => void): Subscription {
    const changed = (sop: string) => {
      this.#pending.add(sop);
      kick();
    };
    const subscription = events.of('instance-stored').subscribe((e) => changed(e.sopInstanceUid));
    subscription.add(this.#spool.onRemoved(changed));
    return subscription;
  }

  /** What the outbox publishes in this pass (taken now, before its items, so their items go first). */
  take(): string[] {
    const sops = [...this.#pending];
    this.#pending = new Set();
    return sops;
  }

  /** A pass that failed: published next time. */
  giveBack(sops: string[]): void {
    for (const s of sops) this.#pending.add(s);
  }

  async publish(sops: string[]): Promise<void> {
    for (let i = 0; i < sops.length; i += BATCH) {
      const entries: Entry[] = [];
      const gone: string[] = []; // no longer in the spool (retention removed it): no longer here either
      for (const sop of sops.slice(i, i + BATCH)) {
        const r = this.#spool.get(sop);
        if (r) entries.push(entryOf(r));
        else gone.push(sop);
      }
      if (entries.length > 0) await this.#upsert(this.#pool, entries);
      if (gone.length > 0) await this.#pool.query('DELETE FROM instances WHERE node = $1 AND sop_uid = ANY($2::text[])', [this.#node, gone]);
    }
  }

  async #upsert(db: Pool | PoolClient, entries: Entry[]): Promise<void> {
    await db.query(
      `INSERT INTO instances (sop_uid, node, sop_class_uid, study_uid, series_uid, path, received_at)
         SELECT x.sop_uid, $1, x.sop_class_uid, x.study_uid, x.series_uid, x.path, x.received_at
           FROM jsonb_to_recordset($2::jsonb) AS x(sop_uid text, sop_class_uid text, study_uid text, series_uid text, path text, received_at timestamptz)
       ON CONFLICT (sop_uid, node) DO UPDATE SET sop_class_uid = EXCLUDED.sop_class_uid, study_uid = EXCLUDED.study_uid, series_uid = EXCLUDED.series_uid,
         path = EXCLUDED.path, received_at = EXCLUDED.received_at`,
      [this.#node, JSON.stringify(entries)],
    );
  }

  /** At join: a directory that does not count this node's spool is rewritten from it, in one transaction. */
  async reconcile(): Promise<void> {
    const { rows } = await this.#pool.query<{ n: number }>('SELECT count(*)::int AS n FROM instances WHERE node = $1', [this.#node]);
    const local = this.#spool.count();
    if (rows[0].n === local) return;
    const instances = await inTransaction(this.#pool, async (client) => {
      await client.query('DELETE FROM instances WHERE node = $1', [this.#node]);
      // Read in batches from the index (not the whole spool in memory at once).
      let batch: Entry[] = [];
      let upserted = 0;
      for (const { value: r } of this.#index.getRange()) {
        batch.push(entryOf(r));
        if (batch.length === BATCH) {
          await this.#upsert(client, batch);
          upserted += batch.length;
          batch = [];
        }
      }
      if (batch.length > 0) await this.#upsert(client, batch);
      return upserted + batch.length;
    });
    this.#log.info({ before: rows[0].n, instances }, 'instance directory rewritten from this node\'s spool');
  }

  /**
   * The instances of `sops` stored on other nodes, with what their shared queue items still wait for
   * (pending, held for completion, dead letters); rejects when the database is unreachable.
   */
  async elsewhere(sops: string[]): Promise<Map<string, InstanceElsewhere>> {
    if (sops.length === 0) return new Map();
    const { rows } = await this.#pool.query<{ sop_uid: string; node: string; sop_class_uid: string; waiting: string | null }>(
      `SELECT DISTINCT ON (i.sop_uid) i.sop_uid, i.node, i.sop_class_uid,
              (SELECT string_agg(q.peer || CASE WHEN q.state = 'dead' THEN ' (dead letter: ' || coalesce(q.dead_reason, q.last_error, 'failed') || ')'
                                              WHEN q.held_for IS NOT NULL THEN ' (held until its series/study is complete)' ELSE '' END, ', ' ORDER BY q.id)
                 FROM queue_items q WHERE q.sop_uid = i.sop_uid AND q.state IN ('pending', 'dead')) AS waiting
         FROM instances i WHERE i.sop_uid = ANY($1::text[]) AND i.node <> $2 ORDER BY i.sop_uid, i.received_at DESC`,
      [sops, this.#node],
    );
    return new Map(rows.map((r) => [r.sop_uid, { node: r.node, sopClassUid: r.sop_class_uid, ...(r.waiting ? { waiting: `stored on node ${r.node}, not yet delivered to ${r.waiting}` } : {}) }]));
  }
}
