// Q/R through the router, measured (issue 16; not a test): a C-MOVE of one study through the router
// in retrieve-through mode (Orthanc → router → storescp, each instance passed on as it arrives),
// beside DCMTK movescu of the same study straight from the same Orthanc to another storescp, in the
// same run. Time to the last instance at the destination; printed, never asserted.
//   node scripts/bench-qr.ts [instances=300] [pixelBytes=131072]
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { startRouter } from '../actors/router.ts';
import { parseConfig } from '../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { silent } from '../test/helpers/in-process-router.ts';
import { startOrthanc } from '../test/helpers/orthanc.ts';
import { DCMTK_ENV, freePort, run, startStorescp, tempDir } from '../test/helpers/processes.ts';

const count = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.')).length;

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('Q/R benchmark timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function qrBench(instances: number, pixelBytes: number): Promise<void> {
  const src = tempDir('qr-src-');
  const uid = newUid();
  const files = writeDataset(join(src, uid), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: instances, pixelBytes, patientId: 'BENCH', modality: 'CT', studyInstanceUid: uid });
  const wsRouter = tempDir('qr-ws-');
  const wsDirect = tempDir('qr-ws-direct-');
  const ws = await startStorescp(wsRouter, { aeTitle: 'WS' });
  const ws2 = await startStorescp(wsDirect, { aeTitle: 'WS2' });
  const routerPort = await freePort();
  const orthanc = await startOrthanc({ modalities: { ws2: ['WS2', '127.0.0.1', ws2.port], router: ['DICOM_ROUTER', '127.0.0.1', routerPort] } });
  await orthanc.store(files);

  const move = (port: number, called: string, dest: string) => run('movescu', ['-S', '-aec', called, '-aem', dest, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${uid}`, '127.0.0.1', String(port)], { env: DCMTK_ENV, timeoutMs: 600_000 });

  let started = process.hrtime.bigint();
  await move(orthanc.port, orthanc.aeTitle, 'WS2');
  await until(() => count(wsDirect) >= instances, 600_000);
  const direct = Number(process.hrtime.bigint() - started) / 1e6;

  const dir = tempDir('qr-router-');
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), 'rules: []\n');
  const config = parseConfig(stringify({
    // BENCH_QR_FSYNC=0: without the journal's fdatasync per acknowledgement (to see what durability costs).
    storage: { dir: join(dir, 'data'), fsync: process.env.BENCH_QR_FSYNC !== '0' },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: routerPort, bind: '127.0.0.1', queryRetrieve: { sources: ['ARCHIVE', 'local'], move: 'retrieve-through' } }],
    peers: [
      { name: 'ARCHIVE', aeTitle: orthanc.aeTitle, host: '127.0.0.1', port: orthanc.port },
      { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: ws.port },
    ],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  // BENCH_QR_LOG=file: the router's log there (info), to see where the time goes.
  const logger = process.env.BENCH_QR_LOG ? pino({ level: 'info' }, pino.destination({ dest: process.env.BENCH_QR_LOG, sync: false })) : silent;
  const router = await startRouter(config, { logger, watchRules: false });
  started = process.hrtime.bigint();
  let first = 0;
  const firstSeen = until(() => count(wsRouter) >= 1, 600_000).then(() => (first = Number(process.hrtime.bigint() - started) / 1e6));
  const moved = await move(routerPort, 'DICOM_ROUTER', 'WS');
  await until(() => count(wsRouter) >= instances, 600_000);
  const viaRouter = Number(process.hrtime.bigint() - started) / 1e6;
  await firstSeen;
  await router.stop(0);
  await Promise.all([orthanc.stop(), ws.stop(), ws2.stop()]);
  if (moved.code !== 0) console.log(`movescu to the router exited ${moved.code}: ${moved.stderr}`);
  console.log(`\nC-MOVE of one study, ${instances} instances (${pixelBytes} B of pixels each), Orthanc → storescp:`);
  console.log(`  DCMTK movescu straight from Orthanc: ${direct.toFixed(0)} ms to the last instance`);
  console.log(`  movescu to the router (retrieve-through): ${viaRouter.toFixed(0)} ms to the last instance, first after ${first.toFixed(0)} ms`);
  console.log(`  ratio router / direct: ${(viaRouter / direct).toFixed(2)}`);
}

if (import.meta.main) {
  const [instances = '300', pixelBytes = '131072'] = process.argv.slice(2);
  await qrBench(Number(instances), Number(pixelBytes));
}
