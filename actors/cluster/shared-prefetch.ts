// Prefetch jobs shared by the cluster's nodes (issue 17). A job is planned in the node's own durable
// transaction (ingest stays local) and marked in its outbox (`cluster-prefetch-outbox`); this publishes
// it to `prefetch_jobs`, where a study triggers once cluster-wide: the first node to publish a job for a
// study owns `prefetch_studies`' row, and a job another node planned for the same study is dropped (the
// "seen study" is shared). Publishing is idempotent (the job id is the origin id; ON CONFLICT DO NOTHING),
// and the local plan is forgotten once published. A job runs on the node holding its lease (claimed with
// SKIP LOCKED, renewed by the heartbeat); each recorded step is written to its row, so when that node dies
// another node claims it after the lease expires and the prefetch machine resumes from the recorded priors.
// Moved priors (dedupHours) are the shared `prefetch_moved`.
import type { Database } from 'lmdb';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { FINAL_PREFETCH_STATES } from '../../machines/prefetch.machine.ts';
import type { MovedPrior, PrefetchJobRecord, PrefetchShare } from '../jobs/prefetch.ts';
import type { Spool } from '../ingest/spool.ts';
import { inTransaction } from './pg-connection.ts';

/** Jobs one node runs at once (each holds at most one archive association at a time). */
const MAX_RUNNING = 4;
const CLAIM_MS = 1000;
const FINAL = FINAL_PREFETCH_STATES as readonly string[];

type Service = Parameters<PrefetchShare['attach']>[0];

export class SharedPrefetch implements PrefetchShare {
  readonly #pool: Pool;
  readonly #node: string;
  readonly #leaseSeconds: number;
  readonly #log: Logger;
  readonly #outbox: Database<true, string>;
  readonly #reachable: (ok: boolean, err?: unknown) => void;
  #service: Service | undefined;
  /** Jobs this node holds the lease of: the heartbeat renews exactly these. */
  readonly #held = new Set<string>();
  /** Steps not written yet (the database was away), by job. */
  readonly #unsaved = new Map<string, PrefetchJobRecord>();
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(o: { pool: Pool; node: string; leaseSeconds: number; spool: Spool; logger: Logger; reachable(ok: boolean, err?: unknown): void }) {
    this.#pool = o.pool;
    this.#node = o.node;
    this.#leaseSeconds = o.leaseSeconds;
    this.#log = o.logger;
    this.#reachable = o.reachable;
    this.#outbox = o.spool.db.openDB<true, string>({ name: 'cluster-prefetch-outbox' });
  }

  attach(service: Service): void {
    this.#service = service;
  }

  planned(id: string): void {
    this.#outbox.put(id, true);
  }

  /** Job leases the heartbeat renews. */
  held(): string[] {
    return [...this.#held];
  }

  /** Publishing and claiming start once the node has joined the cluster. */
  start(): void {
    this.#timer = setInterval(() => this.kick(), CLAIM_MS);
    this.kick();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /** Publish what is planned, then claim what this node may run: one pass at a time. */
  kick(): void {
    if (this.#stopped || !this.#service) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = (async () => {
      do {
        this.#again = false;
        try {
          await this.#flush();
          await this.#publish();
          await this.#claim();
          this.#reachable(true);
        } catch (err) {
          this.#reachable(false, err);
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#busy = undefined));
  }

  async #publish(): Promise<void> {
    const service = this.#service!;
    const ids = Array.from(this.#outbox.getKeys({ limit: 100 }));
    if (ids.length === 0) return;
    const published: string[] = [];
    await inTransaction(this.#pool, async (client) => {
      for (const id of ids) {
        const record = service.get(id);
        if (!record) {
          published.push(id);
          continue;
        }
        // The first node to publish a job for this study owns the trigger; its other jobs (rules) for it follow.
        await client.query('INSERT INTO prefetch_studies (study_uid, origin_node) VALUES ($1, $2) ON CONFLICT DO NOTHING', [record.triggeringStudy, this.#node]);
        const { rows } = await client.query<{ origin_node: string }>('SELECT origin_node FROM prefetch_studies WHERE study_uid = $1', [record.triggeringStudy]);
        const owner = rows[0]?.origin_node;
        if (owner !== this.#node) {
          this.#log.info({ job: id, rule: record.rule, study: record.triggeringStudy, node: owner }, 'prefetch not started: this study already triggered prefetch on another node of the cluster');
        } else {
          const step = { at: new Date().toISOString(), step: `published to the cluster by node ${this.#node}` };
          const shared = { ...record, history: [...record.history, step] };
          await client.query(
            `INSERT INTO prefetch_jobs (id, origin_node, study_uid, state, record, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
            [id, this.#node, record.triggeringStudy, shared.state, JSON.stringify(shared), record.createdAt],
          );
        }
        published.push(id);
      }
    });
    // The plan is in PostgreSQL now: the node that claims the job records it in its own view.
    await this.#outboxDone(published, service);
  }

  async #outboxDone(ids: string[], service: Service): Promise<void> {
    for (const id of ids) {
      service.forget(id);
      await this.#outbox.remove(id);
    }
  }

  /** Open jobs whose lease is free (never taken, or expired: their node died) are taken, up to MAX_RUNNING here. */
  async #claim(): Promise<void> {
    const service = this.#service!;
    while (!this.#stopped && service.running() < MAX_RUNNING) {
      const { rows } = await this.#pool.query<{ id: string; record: PrefetchJobRecord; lease_owner_was: string | null }>(
        `WITH c AS (
           SELECT id, lease_owner FROM prefetch_jobs
            WHERE state NOT IN ('done', 'partiallyFailed', 'failed') AND (lease_until IS NULL OR lease_until < now())
            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE prefetch_jobs j SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
           FROM c WHERE j.id = c.id
         RETURNING j.id, j.record, c.lease_owner AS lease_owner_was`,
        [this.#node, this.#leaseSeconds],
      );
      const row = rows[0];
      if (!row) return;
      this.#held.add(row.id);
      const was = row.lease_owner_was;
      const taken = was && was !== this.#node ? `taken over by node ${this.#node} from node ${was} (its lease expired)` : `claimed by node ${this.#node}`;
      const record: PrefetchJobRecord = { ...row.record, history: [...row.record.history, { at: new Date().toISOString(), step: taken }] };
      if (was && was !== this.#node) this.#log.warn({ job: row.id, from: was, state: record.state }, 'prefetch job taken over from a node whose lease expired: resumed from its last recorded step');
      service.adopt(record);
    }
  }

  /**
   * A step written while the database is away is kept and written at the next pass (the job goes on; a
   * final state must reach the row, else its lease would be renewed for ever).
   */
  async save(record: PrefetchJobRecord): Promise<boolean> {
    try {
      const mine = await this.#write(record);
      this.#unsaved.delete(record.id);
      return mine;
    } catch (err) {
      this.#reachable(false, err);
      this.#unsaved.set(record.id, record);
      return true;
    }
  }

  async #flush(): Promise<void> {
    for (const [id, record] of [...this.#unsaved]) {
      await this.#write(record);
      if (this.#unsaved.get(id) === record) this.#unsaved.delete(id);
    }
  }

  async #write(record: PrefetchJobRecord): Promise<boolean> {
    const final = FINAL.includes(record.state);
    const { rowCount } = await this.#pool.query(
      `UPDATE prefetch_jobs SET record = $3, state = $4, updated_at = now(),
              lease_owner = CASE WHEN $5 THEN NULL ELSE lease_owner END, lease_until = CASE WHEN $5 THEN NULL ELSE lease_until END
        WHERE id = $1 AND lease_owner = $2`,
      [record.id, this.#node, JSON.stringify(record), record.state, final],
    );
    if (final || rowCount === 0) this.#held.delete(record.id);
    if (final) this.kick();
    return (rowCount ?? 0) > 0;
  }

  async movedAt(key: string): Promise<MovedPrior | undefined> {
    const [destination, study] = splitKey(key);
    const { rows } = await this.#pool.query<{ at: Date; job: string }>('SELECT at, job FROM prefetch_moved WHERE destination = $1 AND study_uid = $2', [destination, study]);
    return rows[0] && { at: rows[0].at.toISOString(), job: rows[0].job };
  }

  async recordMoved(key: string, moved: MovedPrior): Promise<void> {
    const [destination, study] = splitKey(key);
    await this.#pool.query(
      `INSERT INTO prefetch_moved (destination, study_uid, at, job) VALUES ($1, $2, $3, $4)
       ON CONFLICT (destination, study_uid) DO UPDATE SET at = EXCLUDED.at, job = EXCLUDED.job`,
      [destination, study, moved.at, moved.job],
    );
  }
}

/** destination|study (an AE title holds no '|'). */
function splitKey(key: string): [string, string] {
  const i = key.indexOf('|');
  return [key.slice(0, i), key.slice(i + 1)];
}
