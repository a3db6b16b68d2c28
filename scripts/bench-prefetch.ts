// Prefetch figures for `npm run bench` (issue 4): from sending the new study's first instance to the
// router to the last prior's arrival at the workstation, beside a DCMTK movescu of the same studies
// from the same Orthanc in the same run. Measured, printed, never asserted.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startRouter } from '../actors/router.ts';
import { parseConfig } from '../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../test/helpers/dicom-files.ts';
import { silent } from '../test/helpers/in-process-router.ts';
import { startOrthanc } from '../test/helpers/orthanc.ts';
import { run, startStorescp, tempDir } from '../test/helpers/processes.ts';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
const count = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.')).length;

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('prefetch benchmark timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function prefetchBench(priors: number, perStudy: number): Promise<void> {
  const src = tempDir('pf-src-');
  const studies = Array.from({ length: priors }, (_, i) => {
    const uid = newUid();
    writeDataset(join(src, uid), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: perStudy, pixelBytes: 8192, patientId: 'BENCH', modality: 'CT', studyDate: daysAgo(100 + i), studyInstanceUid: uid });
    return uid;
  });
  const trigger = writeDataset(join(src, 'new'), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: 1, patientId: 'BENCH', modality: 'CT', studyDate: daysAgo(0) });
  const wsRouter = tempDir('pf-ws-');
  const wsDirect = tempDir('pf-ws-direct-');
  const ws = await startStorescp(wsRouter, { aeTitle: 'WS' });
  const ws2 = await startStorescp(wsDirect, { aeTitle: 'WS2' });
  const orthanc = await startOrthanc({ modalities: { ws: ['WS', '127.0.0.1', ws.port], ws2: ['WS2', '127.0.0.1', ws2.port] } });
  await orthanc.store(studies.flatMap((uid) => readdirSync(join(src, uid)).map((f) => join(src, uid, f))));
  const total = priors * perStudy;

  // DCMTK movescu of the same studies, one after the other, same Orthanc.
  const started = process.hrtime.bigint();
  for (const uid of studies) {
    await run('movescu', ['-S', '-aec', orthanc.aeTitle, '-aem', 'WS2', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${uid}`, '127.0.0.1', String(orthanc.port)], { timeoutMs: 600_000 });
  }
  await until(() => count(wsDirect) >= total, 600_000);
  const direct = Number(process.hrtime.bigint() - started) / 1e6;

  const dir = tempDir('pf-router-');
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), `rules:\n  - name: prefetch\n    then:\n      prefetch: { archive: ARCHIVE, destination: WS, max: ${priors} }\n`);
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data') },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' }],
    peers: [{ name: 'ARCHIVE', aeTitle: orthanc.aeTitle, host: '127.0.0.1', port: orthanc.port }],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  config.listeners[0].port = 0;
  const router = await startRouter(config, { logger: silent, watchRules: false });
  const t0 = process.hrtime.bigint();
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(router.ports.get('main')), ...trigger]);
  if (sent.code !== 0) throw new Error(`storescu failed: ${sent.stderr}`);
  await until(() => count(wsRouter) >= total, 600_000);
  const viaRouter = Number(process.hrtime.bigint() - t0) / 1e6;
  await router.stop(0);
  await orthanc.stop();
  await ws.stop();
  await ws2.stop();
  console.log(`\nprefetch of ${priors} priors × ${perStudy} instances (8 KB) from Orthanc to a storescp workstation:`);
  console.log(`  router: storescu of the new study's first instance → last prior at the workstation: ${viaRouter.toFixed(0)} ms (C-FIND, selection, ${priors} C-MOVEs)`);
  console.log(`  DCMTK movescu of the same studies from the same Orthanc: ${direct.toFixed(0)} ms`);
  console.log(`  ratio movescu / router: ${(direct / viaRouter).toFixed(2)}`);
}
