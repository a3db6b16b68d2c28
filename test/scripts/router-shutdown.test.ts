// Graceful shutdown of `router start` (issue 6, Operations): SIGTERM during a transfer lets the
// in-flight C-STORE finish and exits 0 with nothing acknowledged lost; a grace period that runs out
// exits 3; a second signal aborts at once with 130.
import test from 'ava';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { Spool } from '../../actors/ingest/spool.ts';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { DCMTK_ENV, freePort, REPO, startProcess, startRouter, tempDir, waitForOutput, waitForPort, writeConfig } from '../helpers/processes.ts';
import type { Started } from '../helpers/processes.ts';
import { slowProxy } from '../helpers/slow-proxy.ts';

const exitOf = (proc: Started) =>
  new Promise<number | null>((resolve) => {
    if (proc.child.exitCode !== null) resolve(proc.child.exitCode);
    else proc.child.once('exit', (code) => resolve(code));
  });

test('SIGTERM during a transfer: the in-flight C-STORE completes, exit 0, every acknowledged instance is stored', async (t) => {
  const router = await startRouter({ fsync: true });
  t.teardown(() => router.stop());
  const proxy = await slowProxy(router.port, 15);
  t.teardown(() => proxy.close());
  const files = writeDataset(join(tempDir(), 'in'), { count: 12, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 65536 });
  const sender = spawn('storescu', ['-v', '-aec', router.aeTitle, '127.0.0.1', String(proxy.port), ...files], { env: DCMTK_ENV });
  let out = '';
  sender.stdout.on('data', (d) => (out += d));
  sender.stderr.on('data', (d) => (out += d));
  const senderDone = new Promise<number | null>((resolve) => sender.once('exit', (code) => resolve(code)));
  await waitForOutput(router, '"msg":"instance stored"');
  router.child.kill('SIGTERM');
  t.is(await exitOf(router), 0, router.output());
  await senderDone;
  const acknowledged = (out.match(/Received Store Response \(Success\)/g) ?? []).length;
  t.true(acknowledged >= 1 && acknowledged < files.length, `acknowledged ${acknowledged}\n${out}`);
  t.regex(router.output(), /"msg":"stopped cleanly"/);
  // The abort line carries the fields of every association line.
  const abort = router.output().split('\n').find((l) => l.includes('aborting the association'));
  t.truthy(abort, router.output());
  t.like(JSON.parse(abort!), { listener: 'main', callingAe: 'STORESCU', calledAe: router.aeTitle });
  t.regex(JSON.parse(abort!).peer, /^(::ffff:)?127\.0\.0\.1:\d+$/);
  // The index (LMDB, closed by the shutdown) holds every acknowledged instance, and only those.
  const spool = await Spool.open({ dir: router.dataDir, fsync: false, verify: false, logger: pino({ level: 'silent' }) });
  t.teardown(() => spool.close());
  t.is(spool.count(), acknowledged);
});

async function routerWithGrace(graceSeconds: number) {
  const dir = tempDir();
  const port = await freePort();
  const configFile = writeConfig(dir, {
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port, bind: '127.0.0.1' }],
    routing: { rulesDir: join(dir, 'rules') },
    shutdown: { graceSeconds },
  });
  const proc = startProcess(process.execPath, [join(REPO, 'scripts/router.ts'), 'start', '--config', configFile]);
  await waitForOutput(proc, '"msg":"router started"');
  await waitForPort(port);
  // A connection that never sends its A-ASSOCIATE-RQ: nothing to abort, so it holds the shutdown.
  const idle = connect({ host: '127.0.0.1', port });
  idle.on('error', () => {});
  await new Promise((r) => idle.once('connect', r));
  return { proc, idle };
}

test('a grace period that runs out cuts what is still open and exits 3', async (t) => {
  const { proc, idle } = await routerWithGrace(0.3);
  t.teardown(() => (idle.destroy(), proc.stop()));
  await new Promise((r) => setTimeout(r, 100));
  proc.child.kill('SIGTERM');
  t.is(await exitOf(proc), 3, proc.output());
  t.regex(proc.output(), /grace period over/);
});

test('a second signal aborts at once with exit code 130', async (t) => {
  const { proc, idle } = await routerWithGrace(30);
  t.teardown(() => (idle.destroy(), proc.stop()));
  await new Promise((r) => setTimeout(r, 100));
  proc.child.kill('SIGTERM');
  await waitForOutput(proc, 'in-flight transactions may finish');
  const started = Date.now();
  proc.child.kill('SIGINT');
  t.is(await exitOf(proc), 130, proc.output());
  t.true(Date.now() - started < 5000);
});
