// Cluster schema migrations (issue 17): applied once under the advisory lock by nodes starting
// together, later files on top, and a database newer than the code refused with a clear message.
import test from 'ava';
import pg from 'pg';
import { migrate, readMigrations, SchemaTooNewError } from '../../actors/cluster/migrate.ts';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';
import { startRouter } from '../helpers/processes.ts';

let server: PostgresServer;
test.before(async () => {
  server = await startPostgres();
});
test.after.always(async () => {
  await server?.stop();
});

test.serial('three nodes starting together apply each migration once; a later file applies on top; a newer database is refused', async (t) => {
  const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: server.url }));
  try {
    const known = readMigrations();
    t.true(known.length >= 1);
    const results = await Promise.all(pools.map((p, i) => migrate(p, { node: `n${i}` })));
    // Exactly one found the empty database; the others found it done.
    t.is(results.filter((r) => r.from === 0).length, 1);
    t.true(results.every((r) => r.to === known.length));
    const versions = await pools[0].query('SELECT version, applied_by FROM schema_version ORDER BY version');
    t.deepEqual(versions.rows.map((r) => r.version), known.map((m) => m.version));
    t.is((await pools[0].query("SELECT to_regclass('queue_items') IS NOT NULL AS ok")).rows[0].ok, true);

    const next = [...known, { version: known.length + 1, name: 'test-extra', sql: 'CREATE TABLE test_extra (x integer)' }];
    t.deepEqual(await migrate(pools[1], { node: 'n1', migrations: next }), { from: known.length, to: known.length + 1 });
    t.is((await pools[0].query("SELECT to_regclass('test_extra') IS NOT NULL AS ok")).rows[0].ok, true);

    // This code (known.length) is now older than the database (known.length + 1).
    const err = await t.throwsAsync(migrate(pools[2], { node: 'n2' }), { instanceOf: SchemaTooNewError });
    t.regex(err!.message, new RegExp(`schema version ${known.length + 1}, this router knows only up to ${known.length}: upgrade this node`));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test.serial('a failing migration leaves the database as it was (one transaction)', async (t) => {
  const pool = new pg.Pool({ connectionString: server.url });
  try {
    const before: number = (await pool.query('SELECT max(version) AS v FROM schema_version')).rows[0].v;
    const applied = Array.from({ length: before }, (_, i) => ({ version: i + 1, name: 'applied', sql: 'SELECT 1' }));
    const bad = [...applied, { version: before + 1, name: 'x', sql: 'CREATE TABLE half_done (x integer)' }, { version: before + 2, name: 'y', sql: 'SELEC broken' }];
    await t.throwsAsync(migrate(pool, { node: 'a', migrations: bad }), { message: /syntax error/ });
    t.is((await pool.query('SELECT max(version) AS v FROM schema_version')).rows[0].v, before);
    t.is((await pool.query("SELECT to_regclass('half_done') IS NULL AS gone")).rows[0].gone, true);
  } finally {
    await pool.end();
  }
});

test.serial('a router whose code is older than the cluster database refuses to start, saying why', async (t) => {
  const pool = new pg.Pool({ connectionString: server.url });
  try {
    await pool.query(`CREATE DATABASE newer`);
  } finally {
    await pool.end();
  }
  const newer = new pg.Pool({ connectionString: server.url.replace(/\/postgres$/, '/newer') });
  try {
    await migrate(newer, { node: 'future', migrations: [...readMigrations(), { version: 99, name: 'future', sql: 'SELECT 1' }] });
  } finally {
    await newer.end();
  }
  const err = await t.throwsAsync(startRouter({ extra: { cluster: { nodeName: 'old', postgres: { url: server.url.replace(/\/postgres$/, '/newer') } } } }));
  t.regex(err!.message, /"level":60.*schema version 99, this router knows only up to \d+: upgrade this node.*"msg":"router could not start"/);
});
