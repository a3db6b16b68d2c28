// The node's outbox (issue 17): ingest stays local. A forward decision is still written to the node's
// own LMDB queue in the instance's transaction, before the acknowledgement (the outbox IS that queue);
// this publishes each item to PostgreSQL (with storage shared, once its file is on disk where other nodes
// can read it), and marks it published (sub-database `cluster-outbox`: local id → row id). The local item
// stays until the shared row is delivered (by whichever node), so retention keeps the file while any node may need it;
// then it is removed here. PostgreSQL unreachable: ingest goes on, publishing resumes when it returns.
// A crash between the PostgreSQL commit and the mark republishes: (origin_node, origin_id) is unique,
// and a delivered row stays 'done' for a day, so the republish inserts nothing.
import { randomUUID } from 'node:crypto';
import type { Database } from 'lmdb';
import type { Pool } from 'pg';
import { inTransaction, notifyPeer } from './pg-connection.ts';
import type { Logger } from 'pino';
import type { OutboundQueue, QueueItem } from '../forward/outbound-queue.ts';
import type { Spool } from '../ingest/spool.ts';
import type { InstanceDirectory } from './instance-directory.ts';
import type { SharedCompletion } from './shared-completion.ts';

/** Items published per PostgreSQL transaction. */
const BATCH = 200;
/** Published items checked per pass for delivery elsewhere. */
const RECONCILE_BATCH = 1000;
const RECONCILE_MS = 1000;
/** How long a pass waits for more items after the first kick. */
const GATHER_MS = 20;
/** Mirroring a shared dead letter locally: no retry here (the shared row is the one retried). */
const NO_RETRY = { attempts: 1, initialBackoffMs: 0, maxBackoffMs: 0, jitter: 0 };
/** Suffix of a publish mark whose shared row's dead letter was mirrored here. */
const DEAD_MARK = ':dead';

export type OutboxOptions = {
  pool: Pool;
  node: string;
  spool: Spool;
  queue: OutboundQueue;
  logger: Logger;
  reachable(ok: boolean, err?: unknown): void;
  /** storage shared: other nodes read the file, so it is published once written (storage local: this node
   *  sends it, from memory if it is still held, and the deferred write keeps its place off the ack path). */
  filesOnDisk: boolean;
  /** Items were published for these peers (the NOTIFY reaches every node; this one is told at once). */
  published(peers: string[]): void;
  /** Items held for a completion group are published with it (held_for), in the same transaction. */
  completion?: SharedCompletion;
  /** Instances stored here, published to the directory after their items. */
  directory?: InstanceDirectory;
};

export class Outbox {
  readonly #o: OutboxOptions;
  #soon: NodeJS.Timeout | undefined;
  readonly #marks: Database<string, string>;
  readonly #incarnation: string;
  #kicked = false;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Publishing starts once the node has joined (schema checked). */
  #started = false;
  #lastReconcile = 0;
  /** Where the next reconcile pass starts: every published item is looked at in turn. */
  #cursor: string | undefined;

  private constructor(o: OutboxOptions, marks: Database<string, string>, incarnation: string) {
    this.#o = o;
    this.#marks = marks;
    this.#incarnation = incarnation;
  }

  /** Opens the marks; the spool's incarnation (made once) keeps a wiped spool's ids from meeting its old ones. */
  static async open(o: OutboxOptions): Promise<Outbox> {
    const marks = o.spool.db.openDB<string, string>({ name: 'cluster-outbox' });
    const meta = o.spool.db.openDB<string, string>({ name: 'cluster-meta' });
    let incarnation = meta.get('incarnation');
    if (!incarnation) {
      incarnation = randomUUID();
      await meta.put('incarnation', incarnation);
    }
    return new Outbox(o, marks, incarnation);
  }

  originId(localId: string): string {
    return `${this.#incarnation}/${localId}`;
  }

  /** Local items not yet in PostgreSQL. */
  unpublished(): QueueItem[] {
    return this.#o.queue.list().filter((i) => this.#marks.get(i.id) === undefined);
  }

  start(intervalMs = 500): void {
    this.#started = true;
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.kick();
  }

  /** New local items (or a periodic look): a pass runs soon, one at a time. */
  kick(): void {
    if (this.#stopped || !this.#started) return;
    this.#kicked = true;
    if (this.#running || this.#soon) return;
    // A pass costs a PostgreSQL commit and an index transaction whatever its size: the items that arrive
    // within a few milliseconds ride the same one instead of one pass each.
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.#pass();
    }, GATHER_MS);
  }

  #pass(): void {
    if (this.#stopped || this.#running) return;
    this.#running = (async () => {
      while (this.#kicked && !this.#stopped) {
        this.#kicked = false;
        try {
          await this.#publish();
          if (Date.now() - this.#lastReconcile >= RECONCILE_MS) {
            this.#lastReconcile = Date.now();
            await this.#reconcile();
          }
        } catch (err) {
          this.#o.reachable(false, err);
          break; // the next tick tries again
        }
      }
    })().finally(() => (this.#running = undefined));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    await this.#running;
  }

  /** The instances stored before this pass go into the directory after the items queued before it (instance-directory.ts). */
  async #publish(): Promise<void> {
    const directory = this.#o.directory?.take() ?? [];
    try {
      await this.#publishItems();
      if (directory.length > 0) await this.#o.directory!.publish(directory);
    } catch (err) {
      this.#o.directory?.giveBack(directory);
      throw err;
    }
  }

  async #publishItems(): Promise<void> {
    for (;;) {
      const batch = this.unpublished().slice(0, BATCH);
      if (batch.length === 0) return;
      // Another node reads the file: it must be written (an instance acknowledged from memory is written soon after).
      if (this.#o.filesOnDisk) for (const item of batch) await this.#o.spool.whenWritten(item.path);
      const ids = new Map<string, string>();
      await inTransaction(this.#o.pool, async (client) => {
        const held = this.#o.completion ? await this.#o.completion.publish(client, batch) : new Map<string, { heldFor?: string; state?: string; reason?: string }>();
        const { rows } = await client.query<{ id: string; origin_id: string }>(
          `INSERT INTO queue_items (origin_node, origin_id, peer, series_uid, sop_uid, node, path, item, enqueued_at, held_for, state, last_error, done_at)
             SELECT $1, x.origin_id, x.peer, x.series_uid, x.sop_uid, $1, x.path, x.item, x.enqueued_at, x.held_for, coalesce(x.state, 'pending'), x.reason,
                    CASE WHEN x.state IS NULL THEN NULL ELSE now() END
               FROM jsonb_to_recordset($2::jsonb) AS x(origin_id text, peer text, series_uid text, sop_uid text, path text, item jsonb, enqueued_at timestamptz, held_for text, state text, reason text)
           ON CONFLICT (origin_node, origin_id) DO UPDATE SET origin_id = EXCLUDED.origin_id
           RETURNING id, origin_id`,
          [this.#o.node, JSON.stringify(batch.map((i) => ({
            origin_id: this.originId(i.id), peer: i.peer, series_uid: i.seriesInstanceUid, sop_uid: i.sopInstanceUid, path: i.path, item: i, enqueued_at: i.enqueuedAt,
            held_for: held.get(i.id)?.heldFor ?? null, state: held.get(i.id)?.state ?? null, reason: held.get(i.id)?.reason ?? null,
          })))],
        );
        for (const r of rows) ids.set(r.origin_id, r.id);
        // Payload {peer, node}: a node with storage local is not woken for another node's items.
        for (const peer of new Set(batch.map((i) => i.peer))) await notifyPeer((sql, params) => client.query(sql, params), peer, this.#o.node);
      });
      this.#o.reachable(true);
      await this.#o.spool.db.transaction(() => {
        for (const item of batch) this.#marks.put(item.id, ids.get(this.originId(item.id)) ?? '?');
        this.#o.completion?.forget(batch.map((i) => i.id));
      });
      this.#o.logger.debug({ items: batch.length }, 'outbox published');
      this.#o.published([...new Set(batch.map((i) => i.peer))]);
    }
  }

  /**
   * What became of the published items, mirrored into the local queue: a delivered row is recorded as
   * this node's delivery (the `duplicates` policies, storage commitment and `queue ls` read those) and the
   * item goes, its file free for retention; a dead letter becomes one here too (storage commitment
   * reports it); a row missing is published again. A new copy of an instance (same SOP Instance UID)
   * moved a pending item to the new file: the shared row follows.
   */
  async #reconcile(): Promise<void> {
    const published = Array.from(this.#marks.getRange({ limit: RECONCILE_BATCH, ...(this.#cursor !== undefined ? { start: this.#cursor } : {}) }), ({ key }) => key);
    this.#cursor = published.length === RECONCILE_BATCH ? published.at(-1) : undefined;
    if (published.length === 0) return;
    const { rows } = await this.#o.pool.query<{ id: string; origin_id: string; state: string; last_status: number | null; reason: string | null; path: string }>(
      `SELECT id, origin_id, state, last_status, coalesce(dead_reason, last_error) AS reason, path FROM queue_items WHERE origin_node = $1 AND origin_id = ANY($2::text[])`,
      [this.#o.node, published.map((id) => this.originId(id))],
    );
    const byOrigin = new Map(rows.map((r) => [r.origin_id, r]));
    const finished: string[] = [];
    const unmark: string[] = [];
    const revived: string[] = [];
    for (const id of published) {
      const row = byOrigin.get(this.originId(id));
      const local = this.#o.queue.get(id);
      if (!local) {
        // Purged here by an operator (`router queue purge`): never delivered, by any node.
        if (row && row.state !== 'done') await this.#o.pool.query(`DELETE FROM queue_items WHERE id = $1 AND state <> 'done'`, [row.id]);
        finished.push(id);
      } else if (row?.state === 'dead' && local.state === 'pending' && this.#marks.get(id)?.endsWith(DEAD_MARK)) {
        // The dead letter was mirrored here and an operator retried it (`router queue retry`): the
        // shared row is the one that is retried, by whichever node claims it.
        await this.#o.pool.query(
          `UPDATE queue_items SET state = 'pending', attempts = 0, next_attempt_at = now(), dead_reason = NULL, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 'dead'`,
          [row.id],
        );
        await notifyPeer((sql, params) => this.#o.pool.query(sql, params), local.peer, this.#o.node);
        await this.#o.spool.db.transaction(() => this.#marks.put(id, row.id));
        revived.push(local.peer);
      } else if (!row) {
        // The shared row is gone though never delivered (a database restored from an older backup, a
        // standby promoted without the last commits): published again, never dropped.
        unmark.push(id);
      } else if (row.state === 'done') {
        await this.#o.queue.delivered(id, { status: row.last_status ?? 0 });
        finished.push(id);
      } else if (row.state === 'dropped') {
        // Its completion group fired without it (whenComplete did not hold, or afterFired): never sent.
        await this.#o.queue.purge(id);
        finished.push(id);
      } else if (row.state === 'dead' && local.state !== 'dead') {
        await this.#o.queue.failed(id, { retryable: false, error: row.reason ?? 'dead letter in the cluster queue', ...(row.last_status !== null ? { status: row.last_status } : {}), policy: NO_RETRY });
        // Remembered, so that the item pending here again later means an operator's retry.
        await this.#o.spool.db.transaction(() => this.#marks.put(id, `${row.id}${DEAD_MARK}`));
      } else if (row.state === 'pending' && local.path !== row.path) {
        await this.#o.pool.query(`UPDATE queue_items SET path = $2, item = $3 WHERE id = $1 AND state = 'pending'`, [row.id, local.path, JSON.stringify(local)]);
      }
    }
    if (revived.length > 0) {
      this.#o.published([...new Set(revived)]);
      this.#o.logger.info({ peers: [...new Set(revived)], items: revived.length }, 'dead letters retried by an operator: pending again in the cluster queue');
    }
    if (finished.length + unmark.length === 0) return;
    await this.#o.spool.db.transaction(() => {
      for (const id of [...finished, ...unmark]) this.#marks.remove(id);
    });
    if (unmark.length > 0) this.#o.logger.warn({ items: unmark.length }, 'published items missing from the cluster database: published again');
  }
}
