// What /api/cluster and the console show of the cluster (issue 17): the nodes with their heartbeats, who
// holds which lease and association slot, the shared queue depths, deliveries and duplicates.
import type { Pool } from 'pg';

export type ClusterStatus = {
  node: string;
  storage: 'shared' | 'local';
  leaseSeconds: number;
  degraded: boolean;
  degradedSince?: string;
  /** The outbox: local items not yet in PostgreSQL. */
  unpublished: number;
  nodes: { name: string; storage: string; heartbeatAt: string; heartbeatAgeSeconds: number; alive: boolean; startedAt: string; pid: number; spoolDir: string }[];
  leases: { owner: string; peer: string; id: string; sopInstanceUid: string; node: string; leaseUntil: string }[];
  slots: { peer: string; slot: number; owner: string; leaseUntil: string }[];
  depths: { peer: string; pending: number; dead: number; leased: number; waitingForNode: number }[];
  deliveries: { delivered: number; duplicates: number };
  /** Prefetch jobs (open: not finished; leased: running on a node, by node) and completion groups (waiting, by lease holder; held items). */
  jobs: { prefetch: { open: number; done: number; failed: number; running: Record<string, number> }; completion: { waiting: number; fired: number; held: number; leases: Record<string, number> } };
};

export type SharedState = Pick<ClusterStatus, 'nodes' | 'leases' | 'slots' | 'depths' | 'deliveries' | 'jobs'>;

export const NO_JOBS: ClusterStatus['jobs'] = { prefetch: { open: 0, done: 0, failed: 0, running: {} }, completion: { waiting: 0, fired: 0, held: 0, leases: {} } };

/** Read in one go; a node is presumed down once its heartbeat is older than a lease. Rejects when unreachable. */
export async function readSharedState(pool: Pool, leaseSeconds: number): Promise<SharedState> {
  const alive = leaseSeconds;
  const [nodes, leases, slots, depths, deliveries, prefetch, groups, held] = await Promise.all([
    pool.query(`SELECT name, storage, heartbeat_at, started_at, pid, spool_dir, extract(epoch FROM now() - heartbeat_at)::float AS age FROM nodes ORDER BY name`),
    pool.query(`SELECT lease_owner, peer, id, sop_uid, node, lease_until FROM queue_items WHERE lease_owner IS NOT NULL AND lease_until > now() AND state = 'pending' ORDER BY id LIMIT 100`),
    pool.query(`SELECT peer, slot, lease_owner, lease_until FROM peer_slots WHERE lease_owner IS NOT NULL AND lease_until > now() ORDER BY peer, slot`),
    pool.query(
      `SELECT q.peer, count(*) FILTER (WHERE q.state = 'pending' AND q.held_for IS NULL) AS pending, count(*) FILTER (WHERE q.state = 'dead') AS dead,
              count(*) FILTER (WHERE q.state = 'pending' AND q.lease_until > now()) AS leased,
              count(*) FILTER (WHERE q.state = 'pending' AND n.storage = 'local' AND n.heartbeat_at < now() - make_interval(secs => $1)) AS waiting
         FROM queue_items q LEFT JOIN nodes n ON n.name = q.node WHERE q.state IN ('pending', 'dead') GROUP BY q.peer ORDER BY q.peer`,
      [alive],
    ),
    pool.query(`SELECT count(*) AS delivered, coalesce(sum(count - 1), 0) AS duplicates FROM deliveries`),
    pool.query(`SELECT state, CASE WHEN lease_until > now() THEN lease_owner END AS owner, count(*)::int AS n FROM prefetch_jobs GROUP BY 1, 2`),
    pool.query(`SELECT state, CASE WHEN lease_until > now() THEN lease_owner END AS owner, count(*)::int AS n FROM completion_groups GROUP BY 1, 2`),
    pool.query(`SELECT count(*)::int AS n FROM queue_items WHERE held_for IS NOT NULL AND state = 'pending'`),
  ]);
  const jobs: ClusterStatus['jobs'] = { prefetch: { open: 0, done: 0, failed: 0, running: {} }, completion: { waiting: 0, fired: 0, held: held.rows[0].n, leases: {} } };
  for (const r of prefetch.rows as { state: string; owner: string | null; n: number }[]) {
    if (r.state === 'done') jobs.prefetch.done += r.n;
    else if (r.state === 'failed' || r.state === 'partiallyFailed') jobs.prefetch.failed += r.n;
    else {
      jobs.prefetch.open += r.n;
      if (r.owner) jobs.prefetch.running[r.owner] = (jobs.prefetch.running[r.owner] ?? 0) + r.n;
    }
  }
  for (const r of groups.rows as { state: string; owner: string | null; n: number }[]) {
    if (r.state === 'fired') jobs.completion.fired += r.n;
    else {
      jobs.completion.waiting += r.n;
      if (r.owner) jobs.completion.leases[r.owner] = (jobs.completion.leases[r.owner] ?? 0) + r.n;
    }
  }
  return {
    nodes: nodes.rows.map((r) => ({
      name: r.name, storage: r.storage, heartbeatAt: r.heartbeat_at.toISOString(), heartbeatAgeSeconds: Math.round(r.age * 10) / 10,
      alive: r.age < alive, startedAt: r.started_at.toISOString(), pid: r.pid, spoolDir: r.spool_dir,
    })),
    leases: leases.rows.map((r) => ({ owner: r.lease_owner, peer: r.peer, id: `pg-${r.id}`, sopInstanceUid: r.sop_uid, node: r.node, leaseUntil: r.lease_until.toISOString() })),
    slots: slots.rows.map((r) => ({ peer: r.peer, slot: r.slot, owner: r.lease_owner, leaseUntil: r.lease_until.toISOString() })),
    depths: depths.rows.map((r) => ({ peer: r.peer, pending: Number(r.pending), dead: Number(r.dead), leased: Number(r.leased), waitingForNode: Number(r.waiting) })),
    deliveries: { delivered: Number(deliveries.rows[0].delivered), duplicates: Number(deliveries.rows[0].duplicates) },
    jobs,
  };
}
