// `router queue ls|retry|purge`: the outbound queues as an operator sees them, read from the spool's
// index (the router may be running: the CLI opens it without ingest), plus, on a cluster node, the
// cluster's shared queue read from PostgreSQL.
import type { Command as Cli } from 'commander';
import { createInterface } from 'node:readline/promises';
import pg from 'pg';
import type { RouterConfig } from '../config/config.ts';
import { readSharedState } from '../actors/cluster/cluster-status.ts';
import type { SharedState } from '../actors/cluster/cluster-status.ts';
import { poolConfig } from '../actors/cluster/pg-connection.ts';
import { OutboundQueue } from '../actors/forward/outbound-queue.ts';
import { Spool } from '../actors/ingest/spool.ts';
import { CommitmentStore } from '../actors/jobs/commitment-store.ts';
import { CommitmentScuStore } from '../actors/jobs/commitment-scu-store.ts';
import { createLogger } from '../actors/observe/logger.ts';
import { nextAttemptInWords, trueNextAttempt } from '../actors/observe/next-attempt.ts';
import type { PeerSlotHold } from '../actors/observe/next-attempt.ts';

export type QueueCliHelpers = {
  fail(err: Error): never;
  configOrExit(file: string): RouterConfig;
  count(n: number, noun: string, nouns?: string): string;
};

/** The cluster's shared queue (issue 17), or why it could not be read. */
async function sharedQueue(config: RouterConfig): Promise<SharedState | { unreachable: string }> {
  const pool = new pg.Pool(poolConfig(config.cluster!.postgres, { max: 1 }));
  pool.on('error', () => {}); // an idle client dropped: the query below reports it
  try {
    return await readSharedState(pool, config.cluster!.leaseSeconds);
  } catch (err) {
    return { unreachable: (err as Error).message };
  } finally {
    await pool.end().catch(() => {});
  }
}

function printSharedQueue(cluster: SharedState | { unreachable: string }, peer: string | undefined): void {
  if ('unreachable' in cluster) {
    console.log(`cluster queue (PostgreSQL): not reachable (${cluster.unreachable}); above is this node's own queue only`);
    return;
  }
  console.log(`cluster queue (PostgreSQL, ${cluster.nodes.filter((n) => n.alive).length} of ${cluster.nodes.length} nodes alive; ${cluster.deliveries.delivered} delivered, ${cluster.deliveries.duplicates} duplicates):`);
  const depths = cluster.depths.filter((d) => !peer || d.peer === peer);
  if (depths.length === 0) console.log('  nothing queued');
  for (const d of depths) {
    const waiting = d.waitingForNode > 0 ? `, ${d.waitingForNode} waiting for their node to return` : '';
    console.log(`  ${d.peer}: ${d.pending} pending (${d.leased} being sent), ${d.dead} dead${waiting}`);
  }
  for (const l of cluster.leases.filter((x) => !peer || x.peer === peer)) console.log(`  ${l.id}  ${l.peer}  sent by ${l.owner} until ${l.leaseUntil}  ${l.sopInstanceUid}`);
}

export function addQueueCommands(program: Cli, h: QueueCliHelpers): void {
  const { fail, configOrExit, count } = h;
  /** Skipped duplicates `queue ls` lists per peer without --all. */
  const RECENT_SKIPPED = 10;
  const queueCmd = program.command('queue').description('outbound queues: list, retry, purge');
  const withQueue = async <T>(configFile: string, fn: (queue: OutboundQueue, spool: Spool, config: RouterConfig) => Promise<T> | T): Promise<T | undefined> => {
    const config = configOrExit(configFile);
    // Nothing was ever stored: there is no queue, and looking must not create one.
    if (!Spool.exists(config.storage.dir)) {
      console.log(`nothing queued: no spool at ${config.storage.dir} yet`);
      return undefined;
    }
    // ingest: false: the router may be running and owns the journal; the CLI reads and edits the index only.
    const spool = await Spool.open({ dir: config.storage.dir, fsync: config.storage.fsync, verify: false, ingest: false, logger: createLogger('warn', process.stderr) });
    try {
      return await fn(OutboundQueue.open(spool, { duplicates: Object.fromEntries(config.peers.map((p) => [p.name, p.duplicates])) }), spool, config);
    } finally {
      await spool.close();
    }
  };

  queueCmd
    .command('ls [peer]')
    .description('queued and dead-letter items per peer, with its duplicates policy and the duplicates it skipped')
    .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
    .option('--json', 'print JSON: { peers, items, skipped }')
    .option('--all', `list every skipped duplicate (default: the ${RECENT_SKIPPED} most recent per peer)`)
    .action((peer: string | undefined, opts: { config: string; json?: boolean; all?: boolean }) =>
      withQueue(opts.config, async (queue, spool, config) => {
        // A running router knows which peers are backing off or have their circuit open: their items wait longer.
        const holds = await runningPeerHolds(config);
        const items = queue.list(peer).map((i) => (i.state === 'pending' ? { ...i, nextAttempt: trueNextAttempt(i, holds.get(i.peer)) } : i));
        // Storage commitment requests not reported yet (waiting for their instances, or their report not yet taken).
        const commitments = new CommitmentStore(spool).open().filter((c) => !peer || c.peer === peer);
        // Storage commitment the router asked of its destinations and that is not decided yet.
        const sentCommitments = new CommitmentScuStore(spool).requests().filter((r) => (r.state === 'sending' || r.state === 'requested') && (!peer || r.peer === peer));
        const skippedPeers = new Set(queue.skipped(peer).map((s) => s.peer));
        const names = peer ? [peer] : [...new Set([...config.peers.map((p) => p.name), ...queue.peers(), ...skippedPeers])];
        const peers = names.map((name) => ({ peer: name, duplicates: queue.policyOf(name), ...queue.depth(name), skipped: queue.skippedCount(name), statusOverrides: queue.overridesApplied(name) }));
        // A cluster node's own queue is its outbox: what the whole cluster still has to deliver is in PostgreSQL.
        const cluster = config.cluster ? await sharedQueue(config) : undefined;
        if (opts.json) return console.log(JSON.stringify({ peers, items, skipped: queue.skipped(peer), commitments, sentCommitments, ...(cluster ? { cluster } : {}) }, null, 2));
        if (cluster) printSharedQueue(cluster, peer);
        for (const p of peers) {
          const skipped = p.skipped > 0 ? `, ${p.skipped} duplicates skipped` : '';
          console.log(`${p.peer}: ${p.pending} pending, ${p.dead} dead${skipped} (duplicates: ${p.duplicates})`);
          for (const o of p.statusOverrides) {
            console.log(`  status ${o.status} read as ${o.outcome} (statusOverrides): ${o.count} time${o.count === 1 ? '' : 's'}, last ${o.lastAt} ${o.lastSopInstanceUid}`);
          }
          for (const i of items.filter((x) => x.peer === p.peer)) {
            const why = i.state === 'dead' ? `  ${i.deadReason ?? ''}` : i.lastError ? `  last: ${i.lastError}` : '';
            const next = 'nextAttempt' in i ? `  next ${nextAttemptInWords(i.nextAttempt)}` : '';
            console.log(`  ${i.id}  ${i.state.padEnd(7)} attempts ${i.attempts}${next}  ${i.sopInstanceUid}${why}`);
          }
          const recent = queue.skipped(p.peer, opts.all ? {} : { limit: RECENT_SKIPPED });
          if (recent.length < p.skipped) console.log(`  (${p.skipped - recent.length} older skipped duplicates: --all lists them)`);
          for (const s of recent) console.log(`  ${s.id}  skipped ${s.at}  ${s.sopInstanceUid}  rule ${s.rule}: ${s.why}`);
        }
        if (commitments.length > 0) console.log(`storage commitment reports not yet acknowledged: ${commitments.length}`);
        for (const c of commitments) {
          const detail = c.state === 'waiting'
            ? `waiting (${c.commitWhen}) for ${Object.keys(c.waitingFor ?? {}).length} of ${c.referenced.length} instances until ${c.deadline}`
            : `report to ${c.peer}: ${c.reportAttempts} attempts${c.nextReportAt ? `, next ${c.nextReportAt}` : ''}${c.lastReportError ? `, last: ${c.lastReportError}` : ''}`;
          console.log(`  ${c.id}  from ${c.callingAeTitle}  ${detail}`);
        }
        if (sentCommitments.length > 0) console.log(`storage commitment asked of destinations, not yet reported: ${sentCommitments.length}`);
        for (const r of sentCommitments) {
          console.log(`  ${r.transactionUid}  to ${r.peer}  ${r.state} ${count(r.referenced.length, 'instance')} since ${r.requestedAt ?? r.createdAt}`);
        }
      }),
    );

  /** A request to the running router's inspector; undefined when it is not running (or does not answer). */
  async function askRunningRouter(config: RouterConfig, path: string, method: 'GET' | 'POST' = 'GET'): Promise<unknown> {
    if (!config.inspect.enabled) return undefined;
    try {
      const { inspectorUrl } = await import('./inspect-cli.ts');
      const res = await fetch(`${inspectorUrl(config)}${path}`, { method, headers: config.inspect.token ? { authorization: `Bearer ${config.inspect.token}` } : {}, signal: AbortSignal.timeout(2000) });
      return res.ok ? await res.json() : undefined;
    } catch {
      return undefined;
    }
  }

  /** The peer slots of the running router (from its inspector), by peer; none when it does not answer. */
  async function runningPeerHolds(config: RouterConfig): Promise<Map<string, PeerSlotHold[]>> {
    // Not running: the items' own times are the truth.
    const peers = (await askRunningRouter(config, '/api/peers')) as { name: string; slots: PeerSlotHold[] }[] | undefined;
    return new Map((peers ?? []).map((p) => [p.name, p.slots]));
  }

  queueCmd
    .command('retry [peersOrIds...]')
    .description('make dead letters (and waiting items) of peers, or of single items, due now; a running router picks them up')
    .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
    .option('--all', 'every peer that has items')
    .action((targets: string[], opts: { config: string; all?: boolean }) =>
      withQueue(opts.config, async (queue, _spool, config) => {
        const list = opts.all ? queue.peers() : targets;
        if (list.length === 0) fail(new Error(opts.all ? 'no queued items' : 'name a peer or an item id, or use --all'));
        const retriedPeers = new Set<string>();
        // Each target is one LMDB transaction (all of a peer's items at once, atomically): progress is
        // counted per target. On a terminal one line counts up; in a pipe or a log, a line per target.
        const progress = process.stdout.isTTY && list.length > 1;
        let total = 0;
        for (const [i, target] of list.entries()) {
          if (progress) process.stdout.write(`\r\x1b[K${i}/${list.length} retrying ${target}…`);
          const peer = queue.get(target)?.peer ?? target;
          const n = await queue.retry(target);
          if (n > 0) retriedPeers.add(peer);
          total += n;
          if (progress) process.stdout.write(`\r\x1b[K${i + 1}/${list.length} (${count(total, 'item')} due now)`);
          else if (list.length > 1) console.log(`${target}: ${count(n, 'item')} due now`);
        }
        if (progress) process.stdout.write('\r\x1b[K');
        console.log(`${count(total, 'item')} due now`);
        // A running router would otherwise wait out the peer's backoff or open circuit before trying.
        for (const peer of retriedPeers) {
          const woken = (await askRunningRouter(config, `/api/peers/${encodeURIComponent(peer)}/wake`, 'POST')) as { woken: number } | undefined;
          if (woken && woken.woken > 0) console.log(`${peer}: the running router tries it now`);
        }
      }),
    );

  queueCmd
    .command('purge <peerOrId>')
    .description('remove the items of a peer, or one item (they will never be delivered)')
    .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (target: string, opts: { config: string; yes?: boolean }) => {
      if (!opts.yes) {
        if (!process.stdin.isTTY) fail(new Error('purge removes queued instances for good: confirm with --yes'));
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question(`Remove the queued items of ${target} for good? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) fail(new Error('not purged'));
      }
      await withQueue(opts.config, async (queue) => console.log(`${count(await queue.purge(target), 'item')} purged`));
    });
}
