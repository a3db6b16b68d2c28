// The `router` command: start the router, and the SCU tools integrators use to test peers.
import './v8-memory.ts'; // first: V8's heap flags before anything allocates much
import { Command as Cli, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config/config.ts';
import type { RouterConfig } from '../config/config.ts';
import { createLogger } from '../actors/observe/logger.ts';
import { collectFiles, readPart10File } from '../actors/ingest/part10-file.ts';
import type { Part10File } from '../actors/ingest/part10-file.ts';
import { startRouter } from '../actors/router.ts';
import { ScuAssociation } from '../actors/net/scu.ts';
import { formatStatus, statusCategory } from '../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION_SOP_CLASS } from '../protocol/uids.ts';
import { createInterface } from 'node:readline/promises';
import { readFileSync } from 'node:fs';
import { CommitmentStore } from '../actors/jobs/commitment-store.ts';
import { CommitmentScuStore } from '../actors/jobs/commitment-scu-store.ts';
import { OutboundQueue } from '../actors/forward/outbound-queue.ts';
import { Spool } from '../actors/ingest/spool.ts';
import { readHeaderKeys } from '../actors/ingest/part10-file.ts';
import { evaluate, explainText } from '../routing/evaluate.ts';
import { loadRuleFiles, RulesError } from '../routing/rules-loader.ts';
import { addQrCommands } from './qr-commands.ts';
import { createInspection } from '../actors/observe/inspector.ts';
import { nextAttemptInWords, trueNextAttempt } from '../actors/observe/next-attempt.ts';
import type { PeerSlotHold } from '../actors/observe/next-attempt.ts';
import { gracefulStop } from '../actors/shutdown.ts';
import { readSharedState } from '../actors/cluster/cluster-status.ts';
import type { SharedState } from '../actors/cluster/cluster-status.ts';
import { poolConfig } from '../actors/cluster/pg-connection.ts';
import pg from 'pg';

type Peer = { aeTitle: string; host: string; port: number };

/** AE@host:port, the way integrators write a peer. */
export function parsePeer(value: string): Peer {
  const m = /^([^@]{1,16})@(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new InvalidArgumentError(`expected AE@host:port (AE title 1-16 characters, port 1-65535), got '${value}'`);
  }
  return { aeTitle: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]) };
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const program = new Cli('router').description('dicom-router: DICOM store-and-forward router').version(version).showHelpAfterError();

/** `n thing` or `n things`. */
export function count(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** Logs of the SCU commands: none unless LOG_LEVEL asks (their output is for people). */
const cliLogger = () => createLogger(process.env.LOG_LEVEL ?? 'silent', process.stderr);

program
  .command('start')
  .description('run the router with a configuration file')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .action(async (opts: { config: string }) => {
    let config;
    try {
      config = loadConfig(opts.config);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const log = createLogger(config.log.level);
    const inspection = createInspection(config, log);
    const router = await startRouter(config, { logger: log, inspect: inspection.inspect }).catch((err: Error) => {
      // Located mistakes in the files an integrator edits: plain lines and exit 2, as for the configuration.
      if (err instanceof RulesError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      log.fatal({ err: err.message }, 'router could not start');
      process.exit(1);
    });
    const inspector = await inspection.attach(router).catch(async (err: Error) => {
      log.fatal({ err: err.message, bind: config.inspect.bind, port: config.inspect.port }, 'inspector could not start');
      await router.stop(0);
      process.exit(1);
    });
    log.info({ ports: Object.fromEntries(router.ports), storage: config.storage.dir, ...(inspector ? { inspector: inspector.url } : {}) }, 'router started');
    let stopping = false;
    // Exit codes: 0 drained cleanly, 3 the grace period ended with associations cut, 130 a second signal aborted.
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        process.exit(130);
      }
      stopping = true;
      inspection.setShuttingDown();
      log.info({ signal, graceSeconds: config.shutdown.graceSeconds }, 'stopping: no new associations, in-flight transactions may finish');
      void gracefulStop(router, { graceMs: config.shutdown.graceSeconds * 1000, logger: log })
        .then(async (result) => {
          await inspection.stop();
          log.info(result, result.clean ? 'stopped cleanly' : 'stopped: grace period over, associations were cut');
          process.exit(result.clean ? 0 : 3);
        })
        .catch((err: Error) => {
          log.fatal({ err: err.message }, 'shutdown failed');
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

const scuOptions = (cmd: Cli) =>
  cmd
    .option('--aet <title>', 'our (calling) AE title', 'DICOM_ROUTER')
    .option('--max-pdu <bytes>', 'maximum PDU length we receive', (v) => Number(v), 16384)
    .option('--timeout <seconds>', 'DIMSE response timeout', (v) => Number(v), 60);

scuOptions(program.command('echo').description('C-ECHO a peer AE').argument('<peer>', 'AE@host:port', parsePeer)).action(
  async (peer: Peer, opts: { aet: string; maxPdu: number; timeout: number }) => {
    const peerArg = `${peer.aeTitle}@${peer.host}:${peer.port}`;
    const log = cliLogger();
    const scu = await ScuAssociation.open({
      ...peer,
      calledAeTitle: peer.aeTitle,
      callingAeTitle: opts.aet,
      contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] }],
      maxPduLength: opts.maxPdu,
      dimseTimeoutMs: opts.timeout * 1000,
      logger: log,
    }).catch(fail);
    const outcome = await scu.echo();
    await scu.release();
    if (outcome.status === undefined) fail(new Error(outcome.failure ?? 'no response'));
    console.log(`C-ECHO ${peerArg}: ${formatStatus(outcome.status!)}`);
    process.exit(statusCategory(outcome.status!) === 'success' ? 0 : 1);
  },
);

scuOptions(program.command('send').description('C-STORE files and folders to a peer AE over one association').argument('<peer>', 'AE@host:port', parsePeer).argument('<paths...>', 'files and folders')).action(
  async (peer: Peer, paths: string[], opts: { aet: string; maxPdu: number; timeout: number }) => {
    const log = cliLogger();
    const files: Part10File[] = [];
    let failed = 0;
    for (const path of await collectFiles(paths).catch(fail)) {
      try {
        files.push(await readPart10File(path));
      } catch (err) {
        failed++;
        console.log(`FAILED  not a DICOM Part-10 file (${(err as Error).message})  ${path}`);
      }
    }
    if (files.length === 0) fail(new Error('no DICOM files to send'));
    // One presentation context per (SOP class, transfer syntax) the files use.
    const contexts = new Map<string, { abstractSyntax: string; transferSyntaxes: string[] }>();
    for (const f of files) contexts.set(`${f.sopClassUid}|${f.transferSyntaxUid}`, { abstractSyntax: f.sopClassUid, transferSyntaxes: [f.transferSyntaxUid] });
    const scu = await ScuAssociation.open({
      ...peer,
      calledAeTitle: peer.aeTitle,
      callingAeTitle: opts.aet,
      contexts: [...contexts.values()],
      maxPduLength: opts.maxPdu,
      dimseTimeoutMs: opts.timeout * 1000,
      logger: log,
    }).catch(fail);
    let sent = 0;
    const progress = process.stdout.isTTY;
    for (const f of files) {
      const outcome = await scu.store(f);
      const ok = outcome.status !== undefined && statusCategory(outcome.status) !== 'failure';
      if (ok) sent++;
      else failed++;
      const what = outcome.status !== undefined ? formatStatus(outcome.status) : outcome.failure;
      const comment = outcome.errorComment ? ` (${outcome.errorComment})` : '';
      if (!ok || !progress || outcome.status !== 0) {
        if (progress) process.stdout.write('\r\x1b[K');
        console.log(`${ok ? 'OK     ' : 'FAILED '} ${what}${comment}  ${f.path}`);
      }
      // On a terminal, one line that counts up; in a pipe or a log, a plain line per file (above).
      if (progress) process.stdout.write(`\r\x1b[K${sent + failed}/${files.length} (${sent} sent, ${failed} failed)`);
    }
    if (progress) process.stdout.write('\r\x1b[K');
    await scu.release();
    console.log(`${sent} sent, ${failed} failed`);
    process.exit(failed > 0 ? 1 : 0);
  },
);

/** The configuration, or exit 2 with its located problems. */
function configOrExit(file: string) {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const rules = program.command('rules').description('routing rules: check them, or explain what they do with an instance');

rules
  .command('check')
  .description('validate every rule file against the schema and the configured peers')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .action((opts: { config: string }) => {
    const config = configOrExit(opts.config);
    try {
      const set = loadRuleFiles(config.routing.rulesDir, { peers: config.peers.map((p) => p.name) });
      console.log(`${count(set.rules.length, 'rule')} in ${count(set.files.length, 'file')}: OK (${config.routing.rulesDir})`);
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
  });

rules
  .command('explain <file>')
  .description('which rules match a DICOM file, which conditions failed and why, and what would be sent where (sends nothing)')
  .option('-c, --config <file>', 'configuration file', 'config/router.yaml')
  .option('--calling-ae <title>', 'calling AE title of the imagined association', 'MODALITY')
  .option('--called-ae <title>', 'called AE title (default: the listener\'s first)')
  .option('--listener <name>', 'listener name (default: the first)')
  .option('--source <address>', 'source address', '127.0.0.1')
  .action(async (file: string, opts: { config: string; callingAe: string; calledAe?: string; listener?: string; source: string }) => {
    const config = configOrExit(opts.config);
    let set;
    try {
      set = loadRuleFiles(config.routing.rulesDir, { peers: config.peers.map((p) => p.name) });
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    const listener = config.listeners.find((l) => l.name === (opts.listener ?? config.listeners[0].name));
    if (!listener) fail(new Error(`no listener named '${opts.listener}'`));
    const part10 = await readPart10File(file).catch(fail);
    const keys = await readHeaderKeys(part10).catch(fail);
    const decision = evaluate(set, {
      association: { callingAeTitle: opts.callingAe, calledAeTitle: opts.calledAe ?? listener!.aeTitles[0], listener: listener!.name, remoteAddress: opts.source },
      dataset: keys.dataset,
    });
    console.log(explainText(decision, keys.dataset));
    for (const w of keys.warnings) console.log(`  note: ${w}`);
  });

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

program
  .command('inspect')
  .description("show the running router's actor tree live (from its inspector server), or once as JSON")
  .option('-c, --config <file>', 'configuration file (for the inspector address and token)', 'config/router.yaml')
  .option('--url <url>', 'inspector base URL (default: from the configuration)')
  .option('--token <token>', 'bearer token (default: inspect.token of the configuration)')
  .option('--json', 'print the tree once as JSON')
  .option('--once', 'print the tree once as text')
  .action(async (opts: { config: string; url?: string; token?: string; json?: boolean; once?: boolean }) => {
    const { inspectorUrl, runInspect } = await import('./inspect-cli.ts');
    const config = opts.url ? undefined : configOrExit(opts.config);
    const url = opts.url ?? inspectorUrl(config!);
    await runInspect(url, { ...opts, token: opts.token ?? config?.inspect.token }).catch(fail);
    process.exit(0);
  });

program
  .command('certs')
  .description('TLS material')
  .command('init [dir]')
  .description('create a lab CA, a server and a client certificate (TEST material, not for production) in DIR (default certs/lab)')
  .option('--days <n>', 'validity of the server and client certificates, in days', (v) => Number(v), 365)
  .option('--host <names...>', 'more host names or IP addresses for the server certificate (localhost, 127.0.0.1, ::1 and this host are always in)')
  .option('--force', 'overwrite existing files')
  .action(async (dir: string | undefined, opts: { days: number; host?: string[]; force?: boolean }) => {
    const { initLabCerts, labSummary } = await import('./certs.ts');
    try {
      console.log(labSummary(initLabCerts(dir ?? 'certs/lab', { days: opts.days, hosts: opts.host, force: opts.force })));
    } catch (err) {
      fail(err as Error);
    }
  });

addQrCommands(program, { parsePeer, fail, configOrExit });

function fail(err: Error): never {
  process.stderr.write(`router: ${err.message}\n`);
  process.exit(1);
}

await program.parseAsync(process.argv);
