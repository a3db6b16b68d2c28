// The pg Pool settings for cluster.postgres: a URL as given, or host/port/database/user with the
// password read from its file (first line) at start.
import { readFileSync } from 'node:fs';
import type { Pool, PoolClient, PoolConfig } from 'pg';
import type { PostgresConnection } from '../../config/cluster-config.ts';

export function poolConfig(c: PostgresConnection, extra: PoolConfig = {}): PoolConfig {
  const base: PoolConfig = 'url' in c
    ? { connectionString: c.url }
    : {
      host: c.host, port: c.port, database: c.database, user: c.user,
      ...(c.passwordFile ? { password: readFileSync(c.passwordFile, 'utf8').split(/\r?\n/)[0] } : {}),
    };
  // A node must notice an unreachable database quickly (it is then degraded; ingest goes on).
  return { connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, max: 8, ...base, ...extra };
}

/**
 * A client checked out of the pool for a transaction. pg emits 'error' on a checked-out client whose
 * connection drops between two queries (PostgreSQL stopped): unheard, that would end the process. The
 * next query on it fails instead, and the caller handles that.
 */
export async function checkout(pool: Pool): Promise<PoolClient> {
  const client = await pool.connect();
  // Once per connection: the pool hands the same client out again and again (the outbox checks one out
  // every pass), and a listener per checkout grew without bound.
  if (!heard.has(client)) {
    heard.add(client);
    client.on('error', () => {});
  }
  return client;
}

const heard = new WeakSet<PoolClient>();

/** `work` in one transaction on a client of its own: committed if it resolves, rolled back if it throws. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await checkout(pool);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Wakes the peer machines of the cluster's nodes for `peer` (LISTEN router_queue in cluster-node.ts
 * reads this payload; a storage-local node ignores another node's items).
 */
export function notifyPeer(query: (sql: string, params: unknown[]) => Promise<unknown>, peer: string, node: string): Promise<unknown> {
  return query(`SELECT pg_notify('router_queue', $1)`, [JSON.stringify({ peer, node })]);
}
