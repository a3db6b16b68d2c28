// Schema migrations of the cluster database (issue 17): numbered SQL files in migrations/
// (NNN-name.sql), applied at start in ONE transaction under a transaction-scoped advisory lock, so
// nodes starting together apply each once. A database newer than this code knows is refused: an
// old node must not write rows whose meaning it no longer knows.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { inTransaction } from './pg-connection.ts';

export const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');
/** pg_advisory_xact_lock key: 'dicomrtr' as a number, any constant shared by every node. */
const LOCK_KEY = 0x6469636f6d727472n;

export type Migration = { version: number; name: string; sql: string };

export class SchemaTooNewError extends Error {
  readonly database: number;
  readonly known: number;
  constructor(database: number, known: number) {
    super(`the cluster database is at schema version ${database}, this router knows only up to ${known}: upgrade this node's router before it joins (it refuses to start rather than write rows it does not understand)`);
    this.name = 'SchemaTooNewError';
    this.database = database;
    this.known = known;
  }
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d+)-(.+)\.sql$/.exec(file);
    if (!m) continue;
    out.push({ version: Number(m[1]), name: m[2], sql: readFileSync(join(dir, file), 'utf8') });
  }
  out.sort((a, b) => a.version - b.version);
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`cluster migrations must be numbered 1, 2, 3…: ${dir} has version ${m.version} at position ${i + 1}`);
  });
  return out;
}

/** Brings the database to the newest known version; resolves with the versions before and after. */
export async function migrate(pool: Pool, opts: { node: string; migrations?: Migration[] }): Promise<{ from: number; to: number }> {
  const migrations = opts.migrations ?? readMigrations();
  const known = migrations.at(-1)?.version ?? 0;
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [LOCK_KEY.toString()]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
    const from = rows[0]?.v ?? 0;
    if (from > known) throw new SchemaTooNewError(from, known);
    for (const m of migrations) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_version (version, name, applied_by) VALUES ($1, $2, $3)', [m.version, m.name, opts.node]);
    }
    return { from, to: Math.max(from, known) };
  });
}
