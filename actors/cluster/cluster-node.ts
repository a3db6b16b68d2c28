// This router as one node of a cluster (issue 17): connects to PostgreSQL, applies the schema
// migrations (a database newer than this code refuses the start), registers the node, and runs it:
// the heartbeat (every leaseSeconds/3: heartbeat_at, the node's item and slot leases renewed, peers
// with claimable items woken: another node's expired lease, a missed NOTIFY), LISTEN router_queue
// (a published item wakes the peer's machines on every node), the outbox, the shared queue and the
// cluster-wide association slots. PostgreSQL unreachable: the node is degraded (a warn line when it
// starts, info when it ends, the console says so); ingest goes on, forwarding waits.
import pg from 'pg';
import type { Logger } from 'pino';
import type { ClusterConfig, PeerConfig } from '../../config/config.ts';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import type { PeerGates } from '../forward/peer-gate.ts';
import type { Spool } from '../ingest/spool.ts';
import { ClusterSlots } from './cluster-slots.ts';
import { NO_JOBS, readSharedState } from './cluster-status.ts';
import type { ClusterStatus } from './cluster-status.ts';
export type { ClusterStatus } from './cluster-status.ts';
import { migrate, SchemaTooNewError } from './migrate.ts';
import { Outbox } from './outbox.ts';
import { poolConfig } from './pg-connection.ts';
import { InstanceDirectory } from './instance-directory.ts';
import { SharedCommitments } from './shared-commitments.ts';
import { SharedCompletion } from './shared-completion.ts';
import { SharedPrefetch } from './shared-prefetch.ts';
import { SharedQueue } from './shared-queue.ts';

/** The database did not answer (network, shutting down, not accepting connections), as opposed to refusing us. */
function unreachable(err: unknown): boolean {
  if (err instanceof SchemaTooNewError) return false;
  const code = (err as { code?: unknown } | undefined)?.code;
  // SQLSTATE: class 08 connection exception, 57P0x operator intervention (shutdown, cannot connect now).
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || code.startsWith('57P0');
  return true; // ECONNREFUSED, ENOTFOUND, timeouts
}

/** Delivered rows kept this long, so a republished outbox item is recognised. */
const DONE_KEEP = '1 day';

export class ClusterNode {
  readonly config: ClusterConfig;
  readonly pool: pg.Pool;
  readonly queue: SharedQueue;
  readonly outbox: Outbox;
  readonly slots: ClusterSlots;
  /** Prefetch jobs and completion groups shared through PostgreSQL (the jobs' seams: PrefetchShare, CompletionShare). */
  readonly prefetch: SharedPrefetch;
  readonly completion: SharedCompletion;
  /** Which instance lives on which node (instance-directory.ts). */
  readonly directory: InstanceDirectory;
  /** Storage commitment requests (the seam CommitmentShare). */
  readonly commitments: SharedCommitments;
  readonly #log: Logger;
  readonly #wake: (peers: string[]) => void;
  readonly #peers: string[];
  #degradedSince: Date | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #listener: pg.Client | undefined;
  #listenRetry: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Schema checked and node registered: until then it claims nothing and publishes nothing. */
  #joined = false;
  #joinRetry: NodeJS.Timeout | undefined;
  readonly #spoolDir: string;

  private constructor(config: ClusterConfig, pool: pg.Pool, outbox: Outbox, completion: SharedCompletion, directory: InstanceDirectory, o: { spool: Spool; peers: PeerConfig[]; gates: PeerGates; logger: Logger; wake(peers: string[]): void }) {
    this.config = config;
    this.pool = pool;
    this.#log = o.logger;
    this.#wake = o.wake;
    this.#peers = o.peers.map((p) => p.name);
    this.#spoolDir = o.spool.dir;
    this.outbox = outbox;
    this.completion = completion;
    this.directory = directory;
    this.commitments = new SharedCommitments({ pool, node: config.nodeName, leaseSeconds: config.leaseSeconds, logger: o.logger.child({ actor: 'commitment' }), reachable: (ok, err) => this.reachable(ok, err) });
    this.prefetch = new SharedPrefetch({ pool, node: config.nodeName, leaseSeconds: config.leaseSeconds, spool: o.spool, logger: o.logger.child({ actor: 'prefetch' }), reachable: (ok, err) => this.reachable(ok, err) });
    const max = new Map(o.peers.map((p) => [p.name, p.maxAssociations]));
    this.queue = new SharedQueue({ pool, node: config.nodeName, storage: config.storage, leaseSeconds: config.leaseSeconds, spoolDir: o.spool.dir, reachable: (ok, err) => this.reachable(ok, err), joined: () => this.#joined });
    this.slots = new ClusterSlots({ pool, node: config.nodeName, leaseSeconds: config.leaseSeconds, maxAssociations: (p) => max.get(p) ?? 1, local: o.gates, joined: () => this.#joined });
  }

  /**
   * Connects, migrates and registers, then runs. A database that cannot be reached yet does not stop the
   * start: the node runs degraded (ingest goes on into the outbox) and joins once it answers. A database
   * newer than this code, or one that refuses us (authentication, permissions), stops the start.
   */
  static async start(config: ClusterConfig, o: { spool: Spool; queue: OutboundQueue; peers: PeerConfig[]; gates: PeerGates; logger: Logger; wake(peers: string[]): void }): Promise<ClusterNode> {
    const pool = new pg.Pool(poolConfig(config.postgres));
    // An idle client whose server went away emits 'error': expected while PostgreSQL is down.
    pool.on('error', () => {});
    let node!: ClusterNode;
    const completion = new SharedCompletion({
      pool, node: config.nodeName, leaseSeconds: config.leaseSeconds, spool: o.spool, logger: o.logger.child({ actor: 'completion' }),
      reachable: (ok, err) => node.reachable(ok, err),
    });
    const directory = new InstanceDirectory({ pool, node: config.nodeName, spool: o.spool, logger: o.logger.child({ actor: 'directory' }) });
    const outbox = await Outbox.open({
      completion,
      directory,
      pool, node: config.nodeName, spool: o.spool, queue: o.queue, logger: o.logger,
      reachable: (ok, err) => node.reachable(ok, err),
      filesOnDisk: config.storage === 'shared',
      published: (peers) => o.wake(peers),
    });
    node = new ClusterNode(config, pool, outbox, completion, directory, o);
    try {
      await node.#join();
    } catch (err) {
      if (!unreachable(err)) {
        await pool.end().catch(() => {});
        throw err;
      }
      node.reachable(false, err);
      node.#joinLater();
      return node;
    }
    node.#run();
    return node;
  }

  /** Schema checked (and migrated), this node registered, its previous life's leases freed. */
  async #join(): Promise<void> {
    const { nodeName } = this.config;
    const { from, to } = await migrate(this.pool, { node: nodeName });
    if (from !== to) this.#log.info({ from, to }, 'cluster schema migrated');
    await this.pool.query(
      `INSERT INTO nodes (name, spool_dir, storage, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, now(), now())
       ON CONFLICT (name) DO UPDATE SET spool_dir = EXCLUDED.spool_dir, storage = EXCLUDED.storage, pid = EXCLUDED.pid, started_at = now(), heartbeat_at = now(), degraded_since = NULL`,
      [nodeName, this.#spoolDir, this.config.storage, process.pid],
    );
    // A restarted node's leases are its previous life's: free them now rather than after they expire.
    await this.pool.query('UPDATE queue_items SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [nodeName]);
    await this.pool.query('UPDATE peer_slots SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [nodeName]);
    await this.pool.query('UPDATE prefetch_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [nodeName]);
    await this.pool.query('UPDATE completion_groups SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [nodeName]);
    await this.pool.query('UPDATE commitment_requests SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [nodeName]);
    await this.directory.reconcile();
    this.#joined = true;
  }

  /** Tries to join every 2 s until it does; an answer that is not "unreachable" is logged once, and retried slower. */
  #joinLater(): void {
    let told = false;
    const attempt = async () => {
      if (this.#stopped) return;
      try {
        await this.#join();
        this.reachable(true);
        this.#run();
      } catch (err) {
        if (!unreachable(err) && !told) {
          told = true;
          this.#log.error({ err: (err as Error).message }, 'cannot join the cluster: this node forwards nothing until this is fixed (ingest goes on)');
        }
        this.#joinRetry = setTimeout(() => void attempt(), unreachable(err) ? 2000 : 30_000);
      }
    };
    this.#joinRetry = setTimeout(() => void attempt(), 2000);
  }

  get degraded(): boolean {
    return this.#degradedSince !== undefined;
  }

  /** Every query's outcome: the first failure starts the degraded state, the first success ends it. */
  reachable(ok: boolean, err?: unknown): void {
    if (ok && this.#degradedSince) {
      this.#log.info({ node: this.config.nodeName, degradedForSeconds: Math.round((Date.now() - this.#degradedSince.getTime()) / 1000) }, 'cluster database reachable again: node no longer degraded');
      this.#degradedSince = undefined;
      this.outbox.kick();
    } else if (!ok && !this.#degradedSince && !this.#stopped) {
      this.#degradedSince = new Date();
      this.#log.warn({ node: this.config.nodeName, error: (err as Error | undefined)?.message }, 'cluster database unreachable: node degraded (ingest goes on; the outbox publishes when it returns)');
    }
  }

  #run(): void {
    this.#log.info({ node: this.config.nodeName, storage: this.config.storage, leaseSeconds: this.config.leaseSeconds }, 'cluster node started');
    this.outbox.start();
    this.prefetch.start();
    this.completion.start();
    this.commitments.start();
    const period = Math.max(500, (this.config.leaseSeconds * 1000) / 3);
    this.#heartbeat = setInterval(() => void this.#beat(), period);
    void this.#beat();
    this.#listen();
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return;
    const me = this.config.nodeName;
    const lease = this.config.leaseSeconds;
    try {
      await this.pool.query('UPDATE nodes SET heartbeat_at = now(), degraded_since = NULL WHERE name = $1', [me]);
      // Renew what this node is using; a lease in its name that it no longer uses (a give-back or release
      // that failed while the database was away) is freed, never renewed forever.
      await this.pool.query(
        `UPDATE queue_items SET lease_owner = CASE WHEN id = ANY($3::bigint[]) THEN lease_owner END,
                lease_until = CASE WHEN id = ANY($3::bigint[]) THEN now() + make_interval(secs => $2) END
          WHERE lease_owner = $1`,
        [me, lease, this.queue.taken()],
      );
      await this.pool.query(
        `UPDATE peer_slots SET lease_owner = CASE WHEN peer || '#' || slot = ANY($3::text[]) THEN lease_owner END,
                lease_until = CASE WHEN peer || '#' || slot = ANY($3::text[]) THEN now() + make_interval(secs => $2) END
          WHERE lease_owner = $1`,
        [me, lease, this.slots.held()],
      );
      // The jobs this node runs and the groups whose machines it runs (a group's lease is taken by the
      // node that published it first, or claimed once free; a lease not in use here is let go).
      await this.pool.query(
        `UPDATE prefetch_jobs SET lease_until = now() + make_interval(secs => $2) WHERE lease_owner = $1 AND id = ANY($3::text[])`,
        [me, lease, this.prefetch.held()],
      );
      await this.pool.query(
        `UPDATE completion_groups SET lease_until = now() + make_interval(secs => $2) WHERE lease_owner = $1 AND state = 'waiting'`,
        [me, lease],
      );
      await this.pool.query(
        `UPDATE commitment_requests SET lease_until = now() + make_interval(secs => $2) WHERE lease_owner = $1 AND state <> 'reported'`,
        [me, lease],
      );
      await this.pool.query(`DELETE FROM queue_items WHERE state IN ('done', 'dropped') AND done_at < now() - interval '${DONE_KEEP}'`);
      // Claimable work this node may have missed (a lease that expired, a NOTIFY lost while disconnected).
      const { rows } = await this.pool.query<{ peer: string }>(
        `SELECT DISTINCT peer FROM queue_items WHERE state = 'pending' AND held_for IS NULL AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
           AND ($1::text IS NULL OR node = $1) AND peer = ANY($2::text[])`,
        [this.config.storage === 'local' ? me : null, this.#peers],
      );
      this.reachable(true);
      if (rows.length > 0) this.#wake(rows.map((r) => r.peer));
    } catch (err) {
      this.reachable(false, err);
    }
  }

  /** LISTEN router_queue on a client of its own, reconnected after a second when it is lost. */
  #listen(): void {
    if (this.#stopped) return;
    const client = new pg.Client(poolConfig(this.config.postgres));
    this.#listener = client;
    const again = () => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      client.end().catch(() => {});
      if (!this.#stopped) this.#listenRetry = setTimeout(() => this.#listen(), 1000);
    };
    client.on('error', again);
    client.on('end', again);
    client.on('notification', (n) => {
      let note: { peer?: unknown; node?: unknown };
      try {
        note = JSON.parse(n.payload ?? '');
      } catch {
        return;
      }
      if (typeof note.peer !== 'string' || !this.#peers.includes(note.peer)) return;
      // storage local: another node's items are not this node's to send.
      if (this.config.storage === 'local' && note.node !== this.config.nodeName) return;
      this.#wake([note.peer]);
    });
    client.connect().then(() => client.query('LISTEN router_queue')).catch(again);
  }

  #last: { at: number; status: ClusterStatus } | undefined;
  #refreshing = false;

  /** For the console (read synchronously): the last status, refreshed in the background when older than 2 s. */
  lastStatus(): ClusterStatus | undefined {
    if (!this.#refreshing && (!this.#last || Date.now() - this.#last.at >= 2000)) {
      this.#refreshing = true;
      void this.status().finally(() => (this.#refreshing = false));
    }
    // The node's own degraded flag is always current.
    return this.#last && { ...this.#last.status, degraded: this.degraded, ...(this.#degradedSince ? { degradedSince: this.#degradedSince.toISOString() } : {}) };
  }

  /** What /api/cluster and the console show. */
  async status(): Promise<ClusterStatus> {
    const status = await this.#status();
    this.#last = { at: Date.now(), status };
    return status;
  }

  async #status(): Promise<ClusterStatus> {
    const base = {
      node: this.config.nodeName, storage: this.config.storage, leaseSeconds: this.config.leaseSeconds, degraded: this.degraded,
      ...(this.#degradedSince ? { degradedSince: this.#degradedSince.toISOString() } : {}),
      unpublished: this.outbox.unpublished().length,
    };
    try {
      const shared = await readSharedState(this.pool, this.config.leaseSeconds);
      this.reachable(true);
      return { ...base, ...shared };
    } catch (err) {
      this.reachable(false, err);
      return { ...base, nodes: [], leases: [], slots: [], depths: [], deliveries: { delivered: 0, duplicates: 0 }, jobs: NO_JOBS };
    }
  }

  /** No new slot is waited for (the forwarders can settle); call before the forwarders' settled(). */
  stopClaims(): void {
    this.slots.stop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.slots.stop();
    this.prefetch.stop();
    this.completion.stop();
    this.commitments.stop();
    clearInterval(this.#heartbeat);
    clearTimeout(this.#joinRetry);
    clearTimeout(this.#listenRetry);
    await this.outbox.stop();
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
    // Leases of a node that stops cleanly are free at once.
    await this.pool.query('UPDATE queue_items SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.config.nodeName]).catch(() => {});
    await this.pool.query('UPDATE peer_slots SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.config.nodeName]).catch(() => {});
    await this.pool.query('UPDATE prefetch_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.config.nodeName]).catch(() => {});
    await this.pool.query('UPDATE completion_groups SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.config.nodeName]).catch(() => {});
    await this.pool.query('UPDATE commitment_requests SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.config.nodeName]).catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
