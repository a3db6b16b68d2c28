// The pg Pool settings for cluster.postgres: a URL as given, or host/port/database/user with the
// password read from its file (first line) at start.
import { readFileSync } from 'node:fs';
import type { PoolConfig } from 'pg';
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
