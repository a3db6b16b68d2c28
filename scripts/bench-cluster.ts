// `node scripts/bench-cluster.ts`: what the cluster's PostgreSQL queue costs (issue 17). A benchmark,
// not a test: nothing asserts a time. Starts its own private PostgreSQL (test/helpers/postgres.ts;
// fsync on, as in production) and prints:
//  1. claims + acks per second the shared queue sustains here: BENCH_CLUSTER_ITEMS items (default
//     20000) in BENCH_CLUSTER_SERIES series, taken and delivered by BENCH_CLUSTER_WORKERS concurrent
//     senders (default 8) through SharedQueue exactly as the forwarders do (take = claim with lease,
//     delivered = state done + deliveries upsert); one take + one ack = one item.
//  2. store-and-forward of BENCH_CLUSTER_SAF small instances (default 2000, 4 KB) storescu → router →
//     storescp by ONE node: the LMDB queue vs the PostgreSQL queue (cluster section), and their ratio.
// Run it alone: it measures the machine, and other tests running beside it would skew it.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../actors/cluster/migrate.ts';
import { SharedQueue } from '../actors/cluster/shared-queue.ts';
import { SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import type { PostgresServer } from '../test/helpers/postgres.ts';
import { run, startRouter, startStorescp, tempDir } from '../test/helpers/processes.ts';

const ITEMS = Number(process.env.BENCH_CLUSTER_ITEMS ?? 20000);
const SERIES = Number(process.env.BENCH_CLUSTER_SERIES ?? 500);
const WORKERS = Number(process.env.BENCH_CLUSTER_WORKERS ?? 8);
const SAF = Number(process.env.BENCH_CLUSTER_SAF ?? 2000);

async function claimsAndAcks(server: PostgresServer): Promise<number> {
  const pool = new pg.Pool({ connectionString: server.url, max: WORKERS + 2 });
  try {
    await migrate(pool, { node: 'bench' });
    await pool.query(`INSERT INTO nodes (name, spool_dir, storage, pid, started_at, heartbeat_at) VALUES ('bench', '/tmp', 'shared', $1, now(), now()) ON CONFLICT DO NOTHING`, [process.pid]);
    await pool.query(
      `INSERT INTO queue_items (origin_node, origin_id, peer, series_uid, sop_uid, node, path, item)
         SELECT 'bench', 'b' || g, 'PEER', 's' || (g % $2), 'sop' || g, 'bench', 'x.dcm',
                jsonb_build_object('peer', 'PEER', 'rule', 'bench', 'sopInstanceUid', 'sop' || g, 'seriesInstanceUid', 's' || (g % $2), 'modifications', '[]'::jsonb)
           FROM generate_series(1, $1) g`,
      [ITEMS, SERIES],
    );
    const queue = new SharedQueue({ pool, node: 'bench', storage: 'shared', leaseSeconds: 30, spoolDir: '/tmp', reachable: () => {}, joined: () => true });
    const started = performance.now();
    let done = 0;
    await Promise.all(Array.from({ length: WORKERS }, async () => {
      const inFlight = new Set<string>();
      for (;;) {
        const item = await queue.take('PEER', inFlight);
        if (!item) {
          if ((await queue.nextDueAt('PEER')) === undefined) return;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        await queue.delivered(item.id, { status: 0 });
        inFlight.delete(item.id);
        done++;
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    console.log(`shared queue: ${done} items claimed and acknowledged by ${WORKERS} senders in ${seconds.toFixed(1)} s = ${(done / seconds).toFixed(0)} items/s (${(2 * done / seconds).toFixed(0)} claims+acks/s)`);
    return done / seconds;
  } finally {
    await pool.end();
  }
}

async function storeAndForward(files: string[], cluster?: PostgresServer): Promise<number> {
  const out = tempDir('bench-dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST' });
  const rules = tempDir('bench-rules-');
  writeFileSync(join(rules, 'all.yaml'), 'rules:\n  - name: all\n    then: { forward: [DEST] }\n');
  const router = await startRouter({
    rulesDir: rules,
    peers: [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port }],
    ...(cluster ? { extra: { cluster: { nodeName: 'bench', postgres: { url: cluster.url }, storage: 'local' } } } : {}),
  });
  try {
    const started = performance.now();
    const sent = await run('storescu', ['-aec', router.aeTitle, '127.0.0.1', String(router.port), ...files], { timeoutMs: 600_000 });
    if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);
    while (readdirSync(out).length < files.length) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - started) / 1000;
    console.log(`store-and-forward, ${cluster ? 'PostgreSQL' : 'LMDB'} queue: ${files.length} instances in ${seconds.toFixed(1)} s = ${(files.length / seconds).toFixed(0)} inst/s`);
    return files.length / seconds;
  } finally {
    await router.stop();
    await dest.stop();
  }
}

const server = await startPostgres();
try {
  await claimsAndAcks(server);
  const files = writeDataset(join(tempDir('bench-in-'), 'small'), { count: SAF, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 3072 });
  const lmdb = await storeAndForward(files);
  const shared = await storeAndForward(files, server);
  console.log(`PostgreSQL queue / LMDB queue store-and-forward throughput: ${(shared / lmdb).toFixed(2)}`);
} finally {
  await server.stop();
}
