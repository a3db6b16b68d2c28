// The shared queue's claims on a real PostgreSQL (issue 17): only the head of a (peer, series) is taken,
// across nodes; a lease keeps others off until it expires; storage local takes only the node's own
// rows; failures back off or make dead letters; a delivery recorded twice is counted as a duplicate.
import test from 'ava';
import pg from 'pg';
import { migrate } from '../../actors/cluster/migrate.ts';
import { SharedQueue } from '../../actors/cluster/shared-queue.ts';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';

let server: PostgresServer;
let pool: pg.Pool;
test.before(async () => {
  server = await startPostgres();
  pool = new pg.Pool({ connectionString: server.url });
  await migrate(pool, { node: 'test' });
  for (const n of ['a', 'b']) await pool.query(`INSERT INTO nodes (name, spool_dir, storage, pid, started_at, heartbeat_at) VALUES ($1, $2, 'shared', 1, now(), now())`, [n, `/shared/nodes/${n}`]);
});
test.after.always(async () => {
  await pool?.end();
  await server?.stop();
});

const POLICY = { attempts: 3, initialBackoffMs: 60_000, maxBackoffMs: 60_000, jitter: 0 };
let seq = 0;

/** Rows as an outbox publishes them: one peer per test, `series` names the series of each. */
async function publish(node: string, peer: string, series: string[]): Promise<void> {
  for (const s of series) {
    const n = ++seq;
    const item = { peer, rule: 'r', sopInstanceUid: `sop${n}`, seriesInstanceUid: s, studyInstanceUid: 'st', sopClassUid: '1.2', transferSyntaxUid: '1.2.840.10008.1.2.1', path: `instances/${n}.dcm`, modifications: [] };
    await pool.query(
      `INSERT INTO queue_items (origin_node, origin_id, peer, series_uid, sop_uid, node, path, item) VALUES ($1, $2, $3, $4, $5, $1, $6, $7)`,
      [node, `o${n}`, peer, s, item.sopInstanceUid, item.path, JSON.stringify(item)],
    );
  }
}

const queueOf = (node: string, opts: { storage?: 'shared' | 'local'; leaseSeconds?: number } = {}) =>
  new SharedQueue({ pool, node, storage: opts.storage ?? 'shared', leaseSeconds: opts.leaseSeconds ?? 30, spoolDir: `/shared/nodes/${node}`, reachable: () => {}, joined: () => true });

test.serial('only the head of each series is claimable, whichever node asks; the next one after the delivery', async (t) => {
  await publish('a', 'P1', ['s1', 's1', 's2']);
  const a = queueOf('a');
  const b = queueOf('b');
  const first = await a.take('P1', new Set());
  const second = await b.take('P1', new Set());
  t.is(first?.seriesInstanceUid, 's1');
  t.is(second?.seriesInstanceUid, 's2', 'the second item of s1 waits for the first');
  t.is(await b.take('P1', new Set()), undefined);
  // b reads a's file through the shared folder, relative to its own spool.
  t.is(second?.path, '../a/instances/3.dcm');
  t.is(first?.path, 'instances/1.dcm', 'its own file, as published');
  const fromB = await queueOf('b').upcoming('P1', 10);
  t.deepEqual(fromB.map((i) => i.sopInstanceUid), ['sop2'], 'proposals look past the series head (contexts for what comes next); leased items are left out');
  await a.delivered(first!.id, { status: 0 });
  const next = await b.take('P1', new Set());
  t.is(next?.sopInstanceUid, 'sop2');
  t.is(next?.path, '../a/instances/2.dcm', "another node's file, relative to this node's spool");
});

test.serial('a lease keeps other nodes off until it expires; then another node takes the item, and the double delivery is counted', async (t) => {
  await publish('a', 'P2', ['s']);
  const a = queueOf('a', { leaseSeconds: 1 });
  const b = queueOf('b', { leaseSeconds: 1 });
  const mine = await a.take('P2', new Set());
  t.truthy(mine);
  t.is(await b.take('P2', new Set()), undefined);
  // a dies without renewing: once lease_until has passed, b takes it.
  await pool.query(`UPDATE queue_items SET lease_until = now() - interval '1 second' WHERE id = $1`, [mine!.id.slice(3)]);
  const theirs = await b.take('P2', new Set());
  t.is(theirs?.id, mine!.id);
  await b.delivered(theirs!.id, { status: 0 });
  await a.delivered(mine!.id, { status: 0 }); // a had sent it too before it stalled
  const { rows } = await pool.query(`SELECT count FROM deliveries WHERE peer = 'P2'`);
  t.deepEqual(rows, [{ count: 2 }]);
});

test.serial('storage local takes only its own rows; a failure backs off, the last attempt makes a dead letter; give back frees it', async (t) => {
  await publish('a', 'P3', ['x']);
  await publish('b', 'P3', ['y']);
  const bLocal = queueOf('b', { storage: 'local' });
  const taken = await bLocal.take('P3', new Set());
  t.is(taken?.seriesInstanceUid, 'y');
  t.is(await bLocal.take('P3', new Set()), undefined, "a's row is not b's to send");
  await bLocal.giveBack(taken!.id);
  const again = await bLocal.take('P3', new Set());
  t.is(again?.id, taken!.id);
  const retry = await bLocal.failed(again!.id, { error: 'C000', status: 0xc000, retryable: true, policy: POLICY });
  t.is(retry?.state, 'pending');
  t.is(retry?.attempts, 1);
  t.true(Date.parse(retry!.nextAttemptAt) > Date.now() + 30_000, 'backs off with the peer policy');
  t.is(await bLocal.take('P3', new Set()), undefined, 'not due');
  t.true((await bLocal.nextDueAt('P3'))! > new Date(Date.now() + 30_000));
  await pool.query(`UPDATE queue_items SET next_attempt_at = now() WHERE peer = 'P3'`);
  const third = await bLocal.take('P3', new Set());
  const dead = await bLocal.failed(third!.id, { error: 'refused', retryable: false, policy: POLICY });
  t.is(dead?.state, 'dead');
  t.is(dead?.deadReason, 'refused');
  const { rows } = await pool.query(`SELECT state, lease_owner FROM queue_items WHERE id = $1`, [third!.id.slice(3)]);
  t.deepEqual(rows, [{ state: 'dead', lease_owner: null }]);
});
