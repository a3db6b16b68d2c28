// Storage commitment requests shared by the cluster's nodes (issue 17). The node that received the
// N-ACTION records the request in its own LMDB before answering (as a single router does), then this
// publishes it to `commitment_requests` (key: origin node / local id) with that node holding its lease,
// and writes every change after it (state, result, report attempts) while it holds the lease. The
// heartbeat renews the leases. A node that dies loses them: another node adopts each open request once
// its lease expires (recorded in its own store too, under the same id unless that is taken), finds the
// instances in the shared directory and the shared queue, and reports on a new association. A node that
// comes back finds its requests held (or reported) by another node, and leaves them to it.
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { CommitmentShare } from '../jobs/commitment.ts';
import type { CommitmentRecord } from '../jobs/commitment-store.ts';

const PASS_MS = 1000;

type Service = Parameters<CommitmentShare['attach']>[0];

export class SharedCommitments implements CommitmentShare {
  readonly #pool: Pool;
  readonly #node: string;
  readonly #leaseSeconds: number;
  readonly #log: Logger;
  readonly #reachable: (ok: boolean, err?: unknown) => void;
  #service: Service | undefined;
  /** Local ids changed since the last pass. */
  #changed = new Set<string>();
  /** Local ids of open requests another node holds now. */
  readonly #foreign = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #stopped = false;
  #started = false;

  constructor(o: { pool: Pool; node: string; leaseSeconds: number; logger: Logger; reachable(ok: boolean, err?: unknown): void }) {
    this.#pool = o.pool;
    this.#node = o.node;
    this.#leaseSeconds = o.leaseSeconds;
    this.#log = o.logger;
    this.#reachable = o.reachable;
  }

  attach(service: Service): void {
    this.#service = service;
    // Open requests of a previous run: published (or found held elsewhere) at the first pass.
    for (const r of service.open()) this.#changed.add(r.id);
  }

  changed(record: CommitmentRecord): void {
    this.#changed.add(record.id);
  }

  mine(id: string): boolean {
    return !this.#foreign.has(id);
  }

  #key(record: CommitmentRecord): string {
    return record.clusterId ?? `${this.#node}/${record.id}`;
  }

  /** Passes start once the node has joined the cluster. */
  start(): void {
    this.#started = true;
    this.#timer = setInterval(() => void this.#pass(), PASS_MS);
    void this.#pass();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #pass(): Promise<void> {
    if (this.#busy || this.#stopped || !this.#started || !this.#service) return;
    this.#busy = true;
    const changed = this.#changed;
    this.#changed = new Set();
    try {
      await this.#push(changed);
      await this.#watchMine();
      await this.#claim();
      this.#reachable(true);
    } catch (err) {
      for (const id of changed) this.#changed.add(id);
      this.#reachable(false, err);
    } finally {
      this.#busy = false;
    }
  }

  /** Each changed request written while this node holds it (a free or expired lease is taken back); else it is another node's now. */
  async #push(ids: Set<string>): Promise<void> {
    const service = this.#service!;
    for (const id of ids) {
      const record = service.get(id);
      if (!record || this.#foreign.has(id)) continue;
      const key = this.#key(record);
      const reported = record.state === 'reported';
      const { rowCount } = await this.#pool.query(
        `INSERT INTO commitment_requests (id, origin_node, transaction_uid, state, record, lease_owner, lease_until, reported_by)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN NULL ELSE $8 END, CASE WHEN $6 THEN NULL ELSE now() + make_interval(secs => $7) END, CASE WHEN $6 THEN $8 END)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, record = EXCLUDED.record, updated_at = now(),
           lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until, reported_by = EXCLUDED.reported_by
         WHERE commitment_requests.state <> 'reported'
           AND (commitment_requests.lease_owner = $8 OR commitment_requests.lease_owner IS NULL OR commitment_requests.lease_until < now())`,
        [key, key.slice(0, key.indexOf('/')), record.transactionUid, record.state, JSON.stringify(record), reported, this.#leaseSeconds, this.#node],
      );
      if (rowCount === 0) await this.#settle(id, key);
    }
  }

  /** The request is another node's: reported there (done here too), or held there (left to it). */
  async #settle(id: string, key: string): Promise<void> {
    const { rows } = await this.#pool.query<{ state: string; lease_owner: string | null; reported_by: string | null; record: CommitmentRecord }>('SELECT state, lease_owner, reported_by, record FROM commitment_requests WHERE id = $1', [key]);
    const row = rows[0];
    if (!row) return;
    if (row.state === 'reported') {
      this.#foreign.delete(id);
      await this.#service!.settledElsewhere(id, row.reported_by ?? 'another node');
    } else if (row.lease_owner && row.lease_owner !== this.#node) {
      if (!this.#foreign.has(id)) this.#log.warn({ transactionUid: row.record.transactionUid, node: row.lease_owner }, 'storage commitment request held by another node of the cluster: left to it');
      this.#foreign.add(id);
    }
  }

  /** The open requests this node decides: still its own? (another node may have adopted one while this node could not renew). */
  async #watchMine(): Promise<void> {
    const service = this.#service!;
    const open = service.open();
    if (open.length === 0) return;
    const keys = new Map(open.map((r) => [this.#key(r), r.id]));
    const { rows } = await this.#pool.query<{ id: string; state: string; lease_owner: string | null; live: boolean }>(
      `SELECT id, state, lease_owner, lease_until > now() AS live FROM commitment_requests WHERE id = ANY($1::text[])`,
      [[...keys.keys()]],
    );
    for (const row of rows) {
      const id = keys.get(row.id)!;
      if (row.state === 'reported' || (row.lease_owner && row.lease_owner !== this.#node && row.live)) await this.#settle(id, row.id);
      else if (this.#foreign.delete(id)) this.#changed.add(id); // free again (its holder died too, or let go): taken back at the next push
    }
  }

  /** Open requests whose lease expired (their node died) are adopted here. */
  async #claim(): Promise<void> {
    const service = this.#service!;
    const { rows } = await this.#pool.query<{ id: string; record: CommitmentRecord; was: string | null }>(
      `WITH c AS (SELECT id, lease_owner FROM commitment_requests WHERE state <> 'reported' AND (lease_owner IS NULL OR lease_until < now())
                   ORDER BY updated_at LIMIT 20 FOR UPDATE SKIP LOCKED)
       UPDATE commitment_requests r SET lease_owner = $1, lease_until = now() + make_interval(secs => $2) FROM c WHERE r.id = c.id
       RETURNING r.id, r.record, c.lease_owner AS was`,
      [this.#node, this.#leaseSeconds],
    );
    for (const row of rows) {
      const local = service.get(row.record.id);
      if (local !== undefined && this.#key(local) === row.id) {
        // Its own (this node restarted and nobody took it meanwhile): its local record is the newer one.
        this.#foreign.delete(local.id);
        this.#changed.add(local.id);
        if (local.state !== 'reported') await service.adopt(local);
        continue;
      }
      const id = local === undefined ? row.record.id : `${row.record.id}@${row.id.slice(0, row.id.indexOf('/'))}`;
      this.#foreign.delete(id);
      this.#log.warn({ transactionUid: row.record.transactionUid, from: row.was ?? row.id.slice(0, row.id.indexOf('/')) }, 'storage commitment request adopted from a node whose lease expired: decided and reported by this node');
      // The requester's association was the other node's: the report goes on a new one.
      await service.adopt({ ...row.record, id, clusterId: row.id });
    }
  }
}
