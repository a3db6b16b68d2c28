// `npm run bench`: the router against DCMTK storescp in the same run, same data, same sender.
// DCMTK storescu sends each set over one association to (a) storescp writing to disk and (b) the
// router (fsync on, spool + LMDB). Prints instances/s and MB/s of each, the ratio router/storescp,
// and the router's peak RSS. A benchmark, not a test: nothing here asserts a time.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concurrentLoad, restartWithQueue } from './bench-load.ts';
import { prefetchBench } from './bench-prefetch.ts';
import { SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { run, startRouter, startStorescp, tempDir } from '../test/helpers/processes.ts';

type Result = { seconds: number; instances: number; bytes: number };

const sets = [
  { name: 'CT 512 KB', count: Number(process.env.BENCH_CT ?? 500), pixelBytes: 524288 },
  { name: 'small 4 KB', count: Number(process.env.BENCH_SMALL ?? 2000), pixelBytes: 3072 },
];
const pdu = Number(process.env.BENCH_PDU ?? 16384);

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function send(dir: string, aeTitle: string, port: number, instances: number, bytes: number): Promise<Result> {
  const started = process.hrtime.bigint();
  const r = await run('storescu', ['-aec', aeTitle, '-xe', '--max-pdu', String(pdu), '+sd', '127.0.0.1', String(port), dir], { timeoutMs: 600_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.code !== 0) throw new Error(`storescu to ${aeTitle} failed: ${r.stderr.slice(0, 2000)}`);
  return { seconds, instances, bytes };
}

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

const fmt = (r: Result) =>
  `${(r.instances / r.seconds).toFixed(0).padStart(6)} inst/s ${(r.bytes / r.seconds / 1e6).toFixed(1).padStart(7)} MB/s (${r.seconds.toFixed(2)} s)`;

const root = join(tmpdir(), 'dicom-router-bench');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
console.log(`dicom-router benchmark: DCMTK storescu → storescp vs → router (fsync on), max PDU ${pdu}, loopback`);
let peak = 0;
const forwardSets = (process.env.BENCH_FORWARD ?? 'CT 512 KB').split(',');
for (const set of sets) {
  const dir = join(root, set.name.replace(/\W+/g, '-'));
  const files = writeDataset(dir, { count: set.count, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: set.pixelBytes });
  const bytes = files.reduce((n, f) => n + readFileSync(f).length, 0);

  const scp = await startStorescp(tempDir('bench-storescp-'), { extraArgs: ['--max-pdu', String(pdu)] });
  const dcmtk = await send(dir, scp.aeTitle, scp.port, files.length, bytes);
  await scp.stop();

  const router = await startRouter({ listener: { maxPduLength: pdu }, fsync: process.env.BENCH_FSYNC !== '0' });
  const ours = await send(dir, router.aeTitle, router.port, files.length, bytes);
  peak = Math.max(peak, peakRssMb(router.child.pid!));
  await router.stop();

  console.log(`\n${set.name}: ${files.length} instances, ${(bytes / 1e6).toFixed(0)} MB`);
  console.log(`  storescp : ${fmt(dcmtk)}`);
  console.log(`  router   : ${fmt(ours)}`);
  console.log(`  ratio router/storescp: ${(dcmtk.seconds / ours.seconds).toFixed(2)}`);
  if (forwardSets.includes(set.name)) {
    const fwd = await forwarded(dir, files.length, bytes);
    console.log(`  storescu → router → storescp, until the destination holds all: ${fmt(fwd)}`);
    console.log(`  ratio end-to-end via router / storescu → storescp direct: ${(dcmtk.seconds / fwd.seconds).toFixed(2)}`);
    console.log(`  forward latency (C-STORE-RSP at router → at destination): p50 ${percentile(fwd.latencies, 50)} ms, p99 ${percentile(fwd.latencies, 99)} ms (n=${fwd.latencies.length})`);
  }
}
// N concurrent associations of the small set (BENCH_ASSOC, default 8; 0 skips): the journal's group
// commit shares one fdatasync between the acknowledgements of every association waiting together.
const assoc = Number(process.env.BENCH_ASSOC ?? 8);
if (assoc > 0) {
  const small = sets.find((x) => x.pixelBytes < 65536)!;
  const parts = Array.from({ length: assoc }, (_, i) => join(root, `concurrent-${i}`));
  let files = 0;
  let bytes = 0;
  for (const dir of parts) {
    const made = writeDataset(dir, { count: Math.ceil(small.count / assoc), sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: small.pixelBytes });
    files += made.length;
    bytes += made.reduce((n, f) => n + readFileSync(f).length, 0);
  }
  const together = async (aeTitle: string, port: number): Promise<Result> => {
    const started = process.hrtime.bigint();
    await Promise.all(parts.map((dir) => send(dir, aeTitle, port, 0, 0)));
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, instances: files, bytes };
  };
  const scp = await startStorescp(tempDir('bench-storescp-'), { extraArgs: ['--max-pdu', String(pdu)] });
  const dcmtk = await together(scp.aeTitle, scp.port);
  await scp.stop();
  const router = await startRouter({ listener: { maxPduLength: pdu }, fsync: process.env.BENCH_FSYNC !== '0' });
  const ours = await together(router.aeTitle, router.port);
  peak = Math.max(peak, peakRssMb(router.child.pid!));
  await router.stop();
  console.log(`\n${small.name}, ${assoc} concurrent associations: ${files} instances`);
  console.log(`  storescp : ${fmt(dcmtk)}`);
  console.log(`  router   : ${fmt(ours)}`);
  console.log(`  ratio router/storescp: ${(dcmtk.seconds / ours.seconds).toFixed(2)}`);
}
console.log(`\nrouter peak RSS: ${peak.toFixed(0)} MB`);
rmSync(root, { recursive: true, force: true });
if (process.env.BENCH_LOAD !== '0') {
  await concurrentLoad(Number(process.env.BENCH_SENDERS ?? 200), Number(process.env.BENCH_EACH ?? 50));
  await restartWithQueue(Number(process.env.BENCH_QUEUED ?? 100_000));
}
if (process.env.BENCH_PREFETCH !== '0') await prefetchBench(Number(process.env.BENCH_PRIORS ?? 3), Number(process.env.BENCH_PRIOR_INSTANCES ?? 100));
