// Load figures for `npm run bench` (issue 7): many concurrent associations, and a restart with a
// deep queue. Measured, printed, never asserted.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { OutboundQueue } from '../actors/forward/outbound-queue.ts';
import { readHeaderKeys, readPart10File } from '../actors/ingest/part10-file.ts';
import { ScuAssociation } from '../actors/net/scu.ts';
import { Spool } from '../actors/ingest/spool.ts';
import { SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { run, startRouter, startStorescp, tempDir, waitForOutput } from '../test/helpers/processes.ts';

const silent = pino({ level: 'silent' });

function peakRssMb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/** `senders` concurrent associations (half DCMTK storescu, half our SCU), `each` instances each, forwarded to a storescp. */
export async function concurrentLoad(senders: number, each: number): Promise<void> {
  const dest = await startStorescp(tempDir('load-dest-'), { aeTitle: 'DEST' });
  const rules = tempDir('load-rules-');
  writeFileSync(join(rules, 'all.yaml'), 'rules:\n  - name: all\n    then: { forward: [DEST] }\n');
  const router = await startRouter({
    listener: { maxAssociations: senders + 10, rateLimit: { attempts: 100_000, perSeconds: 1 } },
    peers: [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port, maxAssociations: 4 }],
    rulesDir: rules,
  });
  const sets = Array.from({ length: senders }, (_, i) =>
    writeDataset(join(tempDir('load-src-'), `s${i}`), { count: each, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 3072 }),
  );
  const started = process.hrtime.bigint();
  const ours = async (files: string[]) => {
    const parsed = await Promise.all(files.map((f) => readPart10File(f)));
    const scu = await ScuAssociation.open({
      host: '127.0.0.1', port: router.port, callingAeTitle: 'LOADSCU', calledAeTitle: 'DICOM_ROUTER',
      contexts: [{ abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }], logger: silent, dimseTimeoutMs: 300_000,
    });
    let ok = 0;
    for (const f of parsed) if ((await scu.store(f)).status === 0) ok++;
    await scu.release();
    return ok;
  };
  const dcmtk = async (files: string[]) => {
    const r = await run('storescu', ['-aet', 'LOADDCMTK', '-aec', 'DICOM_ROUTER', '-xe', '127.0.0.1', String(router.port), ...files], { timeoutMs: 600_000 });
    if (r.code !== 0 && process.env.BENCH_LOAD_LOG) (await import('node:fs')).appendFileSync(process.env.BENCH_LOAD_LOG + '.scu', r.stdout + r.stderr + '\n----\n');
    return r.code === 0 ? files.length : 0;
  };
  const acknowledged = (await Promise.all(sets.map((files, i) => (i % 2 === 0 ? dcmtk(files) : ours(files))))).reduce((a, b) => a + b, 0);
  const receiveSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const total = senders * each;
  // Then until the destination has confirmed every acknowledged instance.
  const delivered = () => router.output().match(/"msg":"delivered"/g)?.length ?? 0;
  const drainDeadline = Date.now() + 15 * 60_000;
  while (delivered() < acknowledged && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 250));
  const allSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const dataDir = router.dataDir;
  const rss = peakRssMb(router.child.pid!);
  if (process.env.BENCH_LOAD_LOG) (await import('node:fs')).writeFileSync(process.env.BENCH_LOAD_LOG, router.output());
  await router.stop();
  const spool = await Spool.open({ dir: dataDir, verify: false, logger: silent });
  const pending = OutboundQueue.open(spool).depth('DEST').pending;
  const stored = spool.count();
  await spool.close();
  await dest.stop();
  console.log(`\n${senders} concurrent associations (${senders / 2} storescu + ${senders / 2} our SCU) × ${each} instances of 4 KB:`);
  console.log(`  acknowledged ${acknowledged} of ${total}, indexed ${stored}, in ${receiveSeconds.toFixed(1)} s (${(acknowledged / receiveSeconds).toFixed(0)} inst/s)`);
  console.log(`  all forwarded to DEST after ${allSeconds.toFixed(1)} s (${delivered()} confirmed, ${pending} left queued)`);
  console.log(`  router peak RSS: ${rss.toFixed(0)} MB`);
}

/** Time from start until forwarding resumes, with `items` queued before the restart. */
export async function restartWithQueue(items: number): Promise<void> {
  const dataDir = join(tempDir('deepq-'), 'data');
  const spool = await Spool.open({ dir: dataDir, fsync: false, logger: silent });
  const queue = OutboundQueue.open(spool);
  // One stored instance; every queue item refers to it (what is measured is the queue, not the disk).
  const [file] = writeDataset(tempDir('deepq-src-'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const part10 = readFileSync(file);
  const meta = await readPart10File(file);
  const keys = await readHeaderKeys(meta);
  const incoming = spool.begin(part10.subarray(0, meta.datasetOffset));
  incoming.write(part10.subarray(meta.datasetOffset));
  const record = await incoming.commit({
    sopInstanceUid: meta.sopInstanceUid, sopClassUid: meta.sopClassUid, studyInstanceUid: keys.studyInstanceUid!, seriesInstanceUid: keys.seriesInstanceUid!,
    patientId: 'Q', transferSyntaxUid: TS.explicitLE, callingAeTitle: 'BENCH', calledAeTitle: 'DICOM_ROUTER', listener: 'main', remoteAddress: '127.0.0.1', receivedAt: new Date().toISOString(),
  });
  for (let done = 0; done < items; done += 5000) {
    await spool.db.transaction(() => {
      for (let i = done; i < Math.min(items, done + 5000); i++) {
        queue.enqueue({ peer: 'DEST', sopInstanceUid: record.sopInstanceUid, seriesInstanceUid: `1.2.826.0.1.3680043.2.1125.99.${3 + (i % 1000)}`, studyInstanceUid: record.studyInstanceUid, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, path: record.path, modifications: [], rule: 'bench' });
      }
    });
  }
  await spool.close();
  const dest = await startStorescp(tempDir('deepq-dest-'), { aeTitle: 'DEST' });
  const rules = tempDir('deepq-rules-');
  const started = process.hrtime.bigint();
  const router = await startRouter({ dataDir, peers: [{ aeTitle: 'DEST', host: '127.0.0.1', port: dest.port }], rulesDir: rules });
  const up = Number(process.hrtime.bigint() - started) / 1e6;
  await waitForOutput(router, '"msg":"delivered"', 120_000);
  const resumed = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(`\nrestart with ${items} queued items: router up in ${up.toFixed(0)} ms, first delivery after ${resumed.toFixed(0)} ms`);
  await router.stop();
  await dest.stop();
}
