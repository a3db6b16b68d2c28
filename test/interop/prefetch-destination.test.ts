// Prefetch refinements against real peers (issue 8): Orthanc is the archive; DCMTK dcmqrscp is the
// workstation, already holding one prior: asked first (C-FIND), that prior is skipped and the
// others moved. A destination without C-FIND (storescp): the check is off, everything moved. The
// selection refers to the triggering instance ({{Modality}}). The job runs in the root's actor tree.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InspectionEvent } from 'xstate';
import { stringify } from 'yaml';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import type { RunningRouter } from '../../actors/router.ts';
import type { PrefetchJobRecord } from '../../actors/jobs/prefetch.ts';
import { parseConfig } from '../../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startDcmqrscp } from '../helpers/dcmqrscp.ts';
import { eventually, silent } from '../helpers/in-process-router.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import { run, startStorescp, tempDir } from '../helpers/processes.ts';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');

type Study = { uid: string; files: string[]; sops: string[] };
async function makeStudy(dir: string, modality: string, days: number, count: number): Promise<Study> {
  const uid = newUid();
  const files = writeDataset(join(dir, uid), {
    sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count, pixelBytes: 256,
    patientId: 'P8', modality, studyDate: daysAgo(days), studyDescription: `${modality} ${days}`, studyInstanceUid: uid,
  });
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  return { uid, files, sops };
}

const sopsIn = async (files: string[]) => (await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid))).sort();

async function routerWith(archivePort: number, checkPort: number, prefetch: string, inspect?: (e: InspectionEvent) => void): Promise<{ router: RunningRouter; port: number }> {
  const dir = tempDir('prefetch-dest-router-');
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'rules', 'rules.yaml'), `rules:\n  - name: priors\n    then:\n      prefetch: ${prefetch}\n`);
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' }],
    peers: [
      { name: 'ARCHIVE', aeTitle: 'ORTHANC', host: '127.0.0.1', port: archivePort, callingAeTitle: 'DICOM_ROUTER' },
      { name: 'WS_QR', aeTitle: 'WS', host: '127.0.0.1', port: checkPort, callingAeTitle: 'DICOM_ROUTER', retry: { attempts: 1 } },
    ],
    routing: { rulesDir: join(dir, 'rules') },
  }), join(dir, 'router.yaml'));
  config.listeners[0].port = 0;
  const router = await startRouter(config, { logger: silent, watchRules: false, ...(inspect ? { inspect } : {}) });
  return { router, port: router.ports.get('main')! };
}

async function send(port: number, files: string[]) {
  const r = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(port), ...files]);
  if (r.code !== 0) throw new Error(`storescu failed: ${r.stderr}`);
}

async function settledJob(t: ExecutionContext, router: RunningRouter): Promise<PrefetchJobRecord> {
  let job: PrefetchJobRecord | undefined;
  await eventually(t, 'the prefetch job settles', () => {
    job = router.prefetch.list()[0];
    return job !== undefined && ['done', 'partiallyFailed', 'failed'].includes(job.state);
  }, 30_000);
  return job!;
}

test.serial('the workstation already holds one prior: asked first, that prior is skipped, the others moved; it ends with all three', async (t) => {
  const data = tempDir('prefetch-dest-data-');
  const ws = await startDcmqrscp({ aeTitle: 'WS' });
  const orthanc = await startOrthanc({ modalities: { ws: ['WS', '127.0.0.1', ws.port] } });
  const inspected = new Set<string>();
  try {
    const held = await makeStudy(data, 'CT', 30, 2);
    const p2 = await makeStudy(data, 'CT', 300, 3);
    const p3 = await makeStudy(data, 'MR', 600, 2);
    const trigger = await makeStudy(data, 'CT', 0, 1);
    await orthanc.store([...held.files, ...p2.files, ...p3.files]);
    await ws.store(held.files);
    const { router, port } = await routerWith(orthanc.port, ws.port, '{ archive: ARCHIVE, destination: WS, skipIfDestinationHas: WS_QR, max: 5 }', (e) => {
      const id = (e.actorRef as { id?: string }).id ?? '';
      if (e.type === '@xstate.snapshot' && id.startsWith('prefetch-')) inspected.add(id);
    });
    try {
      await send(port, trigger.files);
      const job = await settledJob(t, router);
      t.is(job.state, 'done', job.reason);
      t.deepEqual(job.priors!.map((p) => [p.studyInstanceUid, p.state]), [[held.uid, 'skipped'], [p2.uid, 'moved'], [p3.uid, 'moved']]);
      t.is(job.priors![0].reason, 'destination holds 2 of 2 instances');
      t.deepEqual(job.priors!.map((p) => p.instances), [2, 3, 2], "the archive's NumberOfStudyRelatedInstances");
      const steps = job.history.map((h) => h.step);
      t.true(steps.includes(`prior ${held.uid} skipped: destination holds 2 of 2 instances`), steps.join('\n'));
      t.true(steps.includes(`prior ${p2.uid}: destination holds 0 of 3 instances, moving`), steps.join('\n'));
      t.deepEqual(await sopsIn(ws.files()), [...held.sops, ...p2.sops, ...p3.sops].sort(), 'the workstation has all three priors, the held one once');
      // The job ran as a child of the root (its snapshots reached the root's inspection) and left the tree when done.
      t.deepEqual([...inspected], [`prefetch-${job.id}`]);
      await eventually(t, 'the job leaves the tree', () => !Object.keys(router.actor.getSnapshot().children).some((id) => id.startsWith('prefetch-')));
    } finally {
      await router.stop();
    }
  } finally {
    await orthanc.stop();
    await ws.stop();
  }
});

test.serial('a destination without C-FIND: the check is off for the job, everything moved; {{Modality}} selects the trigger\'s modality', async (t) => {
  const data = tempDir('prefetch-dest-data-');
  const wsDir = tempDir('prefetch-dest-ws-');
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  const orthanc = await startOrthanc({ modalities: { ws: ['WS', '127.0.0.1', ws.port] } });
  try {
    const ct1 = await makeStudy(data, 'CT', 30, 1);
    const mr = await makeStudy(data, 'MR', 60, 1);
    const ct2 = await makeStudy(data, 'CT', 90, 2);
    const trigger = await makeStudy(data, 'CT', 0, 1);
    await orthanc.store([...ct1.files, ...mr.files, ...ct2.files]);
    const { router, port } = await routerWith(orthanc.port, ws.port, '{ archive: ARCHIVE, destination: WS, skipIfDestinationHas: WS_QR, modalities: ["{{Modality}}"] }');
    try {
      await send(port, trigger.files);
      const job = await settledJob(t, router);
      t.is(job.state, 'done', job.reason);
      t.deepEqual(job.action.modalities, ['CT'], 'resolved and recorded');
      t.deepEqual(job.templates, { modalities: ['{{Modality}}'] });
      t.deepEqual(job.priors!.map((p) => [p.studyInstanceUid, p.state]), [[ct1.uid, 'moved'], [ct2.uid, 'moved']]);
      t.regex(job.left!.find((l) => l.studyInstanceUid === mr.uid)!.why, /modalities MR not in CT/);
      const steps = job.history.map((h) => h.step);
      t.is(steps.filter((s) => s.startsWith('destination check off for this job')).length, 1, steps.join('\n'));
      t.regex(steps.find((s) => s.startsWith('destination check off'))!, /WS_QR \(WS\) (accepted no Study Root C-FIND|rejected the association)/);
      t.true(steps.includes('modalities {{Modality}} resolved to CT'));
      const received = readdirSync(wsDir).filter((n) => !n.startsWith('.')).map((n) => join(wsDir, n));
      t.deepEqual(await sopsIn(received), [...ct1.sops, ...ct2.sops].sort());
    } finally {
      await router.stop();
    }
  } finally {
    await orthanc.stop();
    await ws.stop();
  }
});
