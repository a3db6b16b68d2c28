// The `cluster` section (issue 17): several router nodes sharing their outbound queues through
// PostgreSQL. What the schema cannot say is checked here (url XOR host/database/user, the password
// file readable) and the section is turned into ClusterConfig. Absent section: undefined, nothing changes.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { got, isObject } from './yaml-problems.ts';
import type { RawProblem } from './yaml-problems.ts';

export type ClusterStorage = 'shared' | 'local';
export type PostgresConnection =
  | { url: string }
  | { host: string; port: number; database: string; user: string; passwordFile?: string };
export type ClusterConfig = {
  nodeName: string;
  postgres: PostgresConnection;
  /** shared: every node reads every node's spool (a dead node's items are delivered by others); local: they wait for it. */
  storage: ClusterStorage;
  leaseSeconds: number;
};

const HOST_FIELDS = ['host', 'database', 'user'] as const;

/** Problems of cluster.postgres a schema cannot express (baseDir: the config file's folder). */
export function clusterProblems(root: Record<string, unknown>, baseDir: string): RawProblem[] {
  const cluster = isObject(root.cluster) ? root.cluster : undefined;
  const pg = cluster && isObject(cluster.postgres) ? cluster.postgres : undefined;
  if (!pg) return [];
  const base = ['cluster', 'postgres'];
  const out: RawProblem[] = [];
  const hostFields = [...HOST_FIELDS, 'port', 'passwordFile'].filter((k) => pg[k] !== undefined);
  if (pg.url !== undefined) {
    if (hostFields.length > 0) out.push({ path: [...base, hostFields[0]], target: 'key', message: `give either url, or host, port, database, user and passwordFile, not both (url is set)` });
    if (typeof pg.url === 'string' && !/^postgres(ql)?:\/\//.test(pg.url)) out.push({ path: [...base, 'url'], target: 'value', message: `must be a postgresql:// URL (got ${got(pg.url)})` });
    if (typeof pg.url === 'string' && /^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(pg.url)) out.push({ path: [...base, 'url'], target: 'value', message: 'must not carry a password: use host, port, database, user and passwordFile' });
    return out;
  }
  const missing = HOST_FIELDS.filter((k) => pg[k] === undefined);
  if (missing.length > 0) out.push({ path: base, target: 'key', message: `needs url, or host, database and user (missing ${missing.join(', ')})` });
  if (typeof pg.passwordFile === 'string') {
    try {
      readFileSync(resolve(baseDir, pg.passwordFile), 'utf8');
    } catch (err) {
      out.push({ path: [...base, 'passwordFile'], target: 'value', message: `cannot read the password file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  }
  return out;
}

/** The validated section as the router uses it (paths resolved against the config file's folder). */
export function toClusterConfig(c: unknown, baseDir: string): ClusterConfig | undefined {
  if (!isObject(c)) return undefined;
  const pg = c.postgres as Record<string, unknown>;
  const postgres: PostgresConnection = typeof pg.url === 'string'
    ? { url: pg.url }
    : {
      host: pg.host as string, port: (pg.port as number | undefined) ?? 5432, database: pg.database as string, user: pg.user as string,
      ...(typeof pg.passwordFile === 'string' ? { passwordFile: resolve(baseDir, pg.passwordFile) } : {}),
    };
  return { nodeName: c.nodeName as string, postgres, storage: c.storage as ClusterStorage, leaseSeconds: c.leaseSeconds as number };
}
