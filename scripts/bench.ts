// `npm run bench`: the router against DCMTK storescp and Orthanc in the same run, same data, same
// sender. DCMTK storescu sends each set over one association (and the small set also over 8) to
// storescp (no fsync), Orthanc (fdatasync per file) and the router (durable acknowledgement); then
// storescu → router → storescp until the destination holds everything. Prints a table with inst/s,
// MB/s, the ratio to storescp and each receiver's peak RSS. A benchmark, not a test: nothing here
// asserts a time. BENCH_REPEAT=3 keeps the median of three runs per cell.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concurrentLoad, restartWithQueue } from './bench-load.ts';
import { prefetchBench } from './bench-prefetch.ts';
import { qrBench } from './bench-qr.ts';
import { SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { run, startRouter, startStorescp, tempDir } from '../test/helpers/processes.ts';
import { measure, peakRssMb } from './bench-receivers.ts';
import type { Measured } from './bench-receivers.ts';
import { hugeInstance } from './bench-huge.ts';

type Result = { seconds: number; instances: number; bytes: number };

const sets = [
  { name: 'CT 512 KB', count: Number(process.env.BENCH_CT ?? 1000), pixelBytes: 524288, concurrent: false },
  { name: 'small 4 KB', count: Number(process.env.BENCH_SMALL ?? 5000), pixelBytes: 3072, concurrent: true },
];
const repeat = Number(process.env.BENCH_REPEAT ?? 1);
const pdu = Number(process.env.BENCH_PDU ?? 16384);

/** Files under a folder (storescp writes one per instance). */
const countFiles = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

/** storescu → router → storescp: seconds until the destination holds every instance, and the forward latencies. */
async function forwarded(dir: string, instances: number, bytes: number): Promise<Result & { latencies: number[] }> {
  const out = tempDir('bench-dest-');
  const dest = await startStorescp(out, { aeTitle: 'DEST', extraArgs: ['--max-pdu', String(pdu)] });
  const rules = tempDir('bench-rules-');
  writeFileSync(join(rules, 'all.yaml'), 'rules:\n  - name: all\n    then: { forward: [DEST] }\n');
  const router = await startRouter({
    listener: { maxPduLength: pdu },
    fsync: process.env.BENCH_FSYNC !== '0',
    peers: [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, maxPduLength: pdu }],
    rulesDir: rules,
  });
  spawnSync('sync'); // a clean page cache, as for every receiver (bench-receivers.ts)
  const started = process.hrtime.bigint();
  const r = await run('storescu', ['-aec', router.aeTitle, '-xe', '--max-pdu', String(pdu), '+sd', '127.0.0.1', String(router.port), dir], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`storescu to the router failed: ${r.stderr.slice(0, 2000)}`);
  while (countFiles(out) < instances) await new Promise((res) => setTimeout(res, 20));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  peak = Math.max(peak, peakRssMb(router.child.pid!));
  await router.stop();
  await dest.stop();
  // C-STORE-RSP at the router ("instance stored") to C-STORE-RSP at the destination ("delivered").
  const stored = new Map<string, number>();
  const latencies: number[] = [];
  for (const line of router.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { msg: string; time: string; sopInstanceUid?: string };
    if (e.msg === 'instance stored' && e.sopInstanceUid) stored.set(e.sopInstanceUid, Date.parse(e.time));
    if (e.msg === 'delivered' && e.sopInstanceUid && stored.has(e.sopInstanceUid)) latencies.push(Date.parse(e.time) - stored.get(e.sopInstanceUid)!);
  }
  return { seconds, instances, bytes, latencies };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

const rate = (r: Result) => `${(r.instances / r.seconds).toFixed(0)} inst/s, ${(r.bytes / r.seconds / 1e6).toFixed(1)} MB/s`;

/** One table row: receiver, throughput, ratio to the storescp baseline, peak RSS. */
function row(what: string, r: Measured, baseline: Measured): string {
  return `| ${what} | ${(r.instances / r.seconds).toFixed(0)} | ${(r.bytes / r.seconds / 1e6).toFixed(1)} | ${(baseline.seconds / r.seconds).toFixed(2)} | ${Number.isFinite(r.peakRssMb) ? r.peakRssMb.toFixed(0) : '-'} |`;
}

const root = join(tmpdir(), `dicom-router-bench-${process.pid}`);
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
console.log(`dicom-router benchmark: DCMTK storescu → storescp / Orthanc / router, max PDU ${pdu}, loopback, ${repeat === 1 ? 'one run' : `median of ${repeat}`} per cell`);
console.log('ratio: the receiver\'s inst/s divided by storescp\'s, same set, same run');
let peak = 0;
const forwardSets = (process.env.BENCH_FORWARD ?? sets.map((s) => s.name).join(',')).split(',');
for (const set of sets) {
  const dir = join(root, set.name.replace(/\W+/g, '-'));
  const files = writeDataset(dir, { count: set.count, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: set.pixelBytes });
  const bytes = files.reduce((n, f) => n + readFileSync(f).length, 0);
  console.log(`\n${set.name}: ${files.length} instances, ${(bytes / 1e6).toFixed(0)} MB, one association`);
  console.log('| receiver | inst/s | MB/s | ratio | peak RSS MB |\n|---|---|---|---|---|');
  const scp = await measure('storescp', dir, pdu, { repeat });
  console.log(row('DCMTK storescp (no fsync)', scp, scp));
  if (process.env.BENCH_ORTHANC !== '0') console.log(row('Orthanc (fdatasync, SQLite)', await measure('orthanc', dir, pdu, { repeat }), scp));
  const ours = await measure('router', dir, pdu, { repeat });
  peak = Math.max(peak, ours.peakRssMb);
  console.log(row('router (durable)', ours, scp));
  const j = ours.journal;
  if (j) {
    const perInstanceUs = (ours.seconds / ours.instances) * 1e6;
    const barrier = j.perCommitUs.capture + j.perCommitUs.write + j.perCommitUs.flush + j.perCommitUs.apply;
    console.log(
      `router, per instance: ${perInstanceUs.toFixed(0)} µs wall; its durable barrier ${barrier.toFixed(0)} µs (index capture ${j.perCommitUs.capture}, journal write ${j.perCommitUs.write}, ` +
        `fdatasync ${j.perCommitUs.flush}, index apply ${j.perCommitUs.apply}; ${(j.commits / j.groups).toFixed(2)} commits per group), the rest ${(perInstanceUs - barrier).toFixed(0)} µs (receive, parse, route, respond)`,
    );
  }
  if (process.env.BENCH_FSYNC_OFF === '1') console.log(row('router (fsync off)', await measure('router', dir, pdu, { repeat, fsync: false }), scp));
  if (set.concurrent) {
    const n = Number(process.env.BENCH_CONCURRENT ?? 8);
    const scpN = await measure('storescp', dir, pdu, { repeat, associations: n });
    const oursN = await measure('router', dir, pdu, { repeat, associations: n });
    console.log(row(`DCMTK storescp, ${n} associations`, scpN, scp));
    console.log(row(`router, ${n} associations`, oursN, scp));
    console.log(`router: ${n} associations reach ${(ours.seconds / oursN.seconds).toFixed(2)}× its one-association figure (group commit across associations)`);
  }
  if (forwardSets.includes(set.name)) {
    const fwd = await forwarded(dir, files.length, bytes);
    console.log(`storescu → router → storescp, until the destination holds all: ${rate(fwd)}; ratio to storescu → storescp direct: ${(scp.seconds / fwd.seconds).toFixed(2)}`);
    console.log(`forward latency (C-STORE-RSP at router → at destination): p50 ${percentile(fwd.latencies, 50)} ms, p99 ${percentile(fwd.latencies, 99)} ms (n=${fwd.latencies.length})`);
  }
}
console.log(`\nrouter peak RSS over the single-association sets and forwarding: ${peak.toFixed(0)} MB`);
rmSync(root, { recursive: true, force: true });
if (process.env.BENCH_HUGE_MB !== '0') await hugeInstance(Number(process.env.BENCH_HUGE_MB ?? 1024), pdu);
if (process.env.BENCH_LOAD !== '0') {
  await concurrentLoad(Number(process.env.BENCH_SENDERS ?? 200), Number(process.env.BENCH_EACH ?? 50));
  await restartWithQueue(Number(process.env.BENCH_QUEUED ?? 100_000));
}
if (process.env.BENCH_PREFETCH !== '0') await prefetchBench(Number(process.env.BENCH_PRIORS ?? 3), Number(process.env.BENCH_PRIOR_INSTANCES ?? 100));
if (process.env.BENCH_QR !== '0') await qrBench(Number(process.env.BENCH_QR_INSTANCES ?? 300), Number(process.env.BENCH_QR_PIXEL_BYTES ?? 131072));
