// Prefetch against a real archive: Orthanc holds one patient's priors (and another patient's
// studies); DCMTK storescu sends a new study to the router; the rule's C-FIND / C-MOVE must bring
// exactly the selected priors to a DCMTK storescp workstation, once per study, recorded step by
// step in LMDB; a prior already moved is not moved again; the archive down then up.
import test from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import type { RunningRouter } from '../../actors/router.ts';
import type { PrefetchJobRecord } from '../../actors/jobs/prefetch.ts';
import { parseConfig } from '../../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { silent } from '../helpers/in-process-router.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import type { Orthanc } from '../helpers/orthanc.ts';
import { freePort, run, startStorescp, tempDir } from '../helpers/processes.ts';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');

type Study = { uid: string; files: string[]; sops: string[] };
async function makeStudy(dir: string, opts: { patientId: string; modality: string; daysAgo: number; description: string; count?: number }): Promise<Study> {
  const uid = newUid();
  const files = writeDataset(join(dir, uid), {
    sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: opts.count ?? 2, pixelBytes: 512,
    patientId: opts.patientId, modality: opts.modality, studyDate: daysAgo(opts.daysAgo), studyDescription: opts.description, studyInstanceUid: uid,
  });
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  return { uid, files, sops };
}

async function receivedSops(dir: string): Promise<string[]> {
  const names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  return (await Promise.all(names.map(async (n) => (await readPart10File(join(dir, n))).sopInstanceUid))).sort();
}

async function routerFor(archivePort: number, rule: string, extra: { retry?: Record<string, number>; moveListener?: boolean; forwardTo?: number } = {}) {
  const dir = tempDir('prefetch-router-');
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), rule);
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [
      { name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' },
      ...(extra.moveListener ? [{ name: 'move', aeTitles: ['ROUTER_MOVE'], port: 2, bind: '127.0.0.1' }] : []),
    ],
    peers: [
      { name: 'ARCHIVE', aeTitle: 'ORTHANC', host: '127.0.0.1', port: archivePort, callingAeTitle: 'DICOM_ROUTER', retry: extra.retry ?? { attempts: 2, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 10 } },
      ...(extra.forwardTo ? [{ name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: extra.forwardTo }] : []),
    ],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  config.listeners[0].port = 0;
  if (extra.moveListener) config.listeners[1].port = await freePort();
  const router = await startRouter(config, { logger: silent, watchRules: false });
  return { router, port: router.ports.get('main')!, movePort: config.listeners[1]?.port };
}

async function storescu(port: number, files: string[]) {
  const r = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(port), ...files]);
  if (r.code !== 0) throw new Error(`storescu failed: ${r.stderr}`);
}

async function jobsSettled(router: RunningRouter, count: number, timeoutMs = 20_000): Promise<PrefetchJobRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = router.prefetch.list();
    if (jobs.length >= count && jobs.every((j) => ['done', 'partiallyFailed', 'failed'].includes(j.state))) return jobs;
    if (Date.now() > deadline) throw new Error(`jobs not settled: ${JSON.stringify(jobs.map((j) => [j.state, j.reason]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const RULE = `rules:
  - name: prefetch-priors
    when: [{ listener: main }]
    then:
      prefetch: { archive: ARCHIVE, destination: WS, modalities: [CT, MR], within: 5y, max: 2 }
`;

test.serial('a new study brings exactly the selected priors to the workstation, once; a second study moves nothing again', async (t) => {
  const data = tempDir('prefetch-data-');
  const wsDir = tempDir('prefetch-ws-');
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  const orthanc = await startOrthanc({ modalities: { ws: ['WS', '127.0.0.1', ws.port] } });
  const p1 = (modality: string, days: number, description: string) => makeStudy(data, { patientId: 'P1', modality, daysAgo: days, description });
  const ctLastYear = await p1('CT', 365, 'CT CHEST');
  const mr2y = await p1('MR', 730, 'MR BRAIN');
  const ct3y = await p1('CT', 1095, 'CT ABDOMEN'); // third newest: beyond max 2
  const ctOld = await p1('CT', 3650, 'CT OLD'); // outside the 5-year window
  const us = await p1('US', 180, 'US NECK'); // modality not in the list
  const other = await makeStudy(data, { patientId: 'P2', modality: 'CT', daysAgo: 100, description: 'OTHER PATIENT' });
  const trigger = await p1('CT', 0, 'CT TODAY');
  await orthanc.store([ctLastYear, mr2y, ct3y, ctOld, us, other].flatMap((s) => s.files));
  const { router, port } = await routerFor(orthanc.port, RULE);
  try {
    await storescu(port, trigger.files.slice(0, 1));
    const [job] = await jobsSettled(router, 1);
    t.is(job.state, 'done', job.reason);
    t.is(job.triggeringStudy, trigger.uid);
    t.is(job.found, 4, "the archive returned P1's studies of the last 5 years (StudyDate range)");
    t.deepEqual(job.priors!.map((p) => [p.studyInstanceUid, p.state]), [[ctLastYear.uid, 'moved'], [mr2y.uid, 'moved']]);
    t.like(job.priors![0], { status: 0, suboperations: { completed: 2, failed: 0 } });
    const why = Object.fromEntries(job.left!.map((l) => [l.studyInstanceUid, l.why]));
    t.regex(why[ct3y.uid], /beyond the newest 2/);
    t.false(ctOld.uid in why, 'the StudyDate range of the C-FIND already left it out');
    t.regex(why[us.uid], /modalities US not in CT\/MR/);
    t.deepEqual(await receivedSops(wsDir), [...ctLastYear.sops, ...mr2y.sops].sort(), 'exactly the selected priors, nothing of P2');
    t.deepEqual(job.history.map((h) => h.step), [
      `planned by rule 'prefetch-priors' for new study ${trigger.uid}`, 'querying', 'found 4 studies, selected 2', 'moving',
      `prior ${ctLastYear.uid} moved`, `prior ${mr2y.uid} moved`, 'done',
    ]);

    // The rest of the same study, on another association: no second job.
    await storescu(port, trigger.files.slice(1));
    await new Promise((r) => setTimeout(r, 300));
    t.is(router.prefetch.list().length, 1, 'once per study, not per instance');

    // A second new study of the same patient within the window: the priors are not moved again.
    // The modality sent it to the archive too: it is the newest match, and left out as the triggering study.
    const second = await p1('MR', 0, 'MR TODAY');
    await orthanc.store(second.files);
    await storescu(port, second.files.slice(0, 1));
    const jobs = await jobsSettled(router, 2);
    const job2 = jobs.find((j) => j.triggeringStudy === second.uid)!;
    t.is(job2.state, 'done');
    t.deepEqual(job2.priors!.map((p) => [p.studyInstanceUid, p.state]), [[ctLastYear.uid, 'skipped'], [mr2y.uid, 'skipped']]);
    t.is(job2.left!.find((l) => l.studyInstanceUid === second.uid)?.why, 'the triggering study');
    t.regex(job2.priors![0].reason!, new RegExp(`moved to WS at .* \\(job ${job.id}\\)`));
    t.is((await receivedSops(wsDir)).length, 4, 'nothing moved twice');
  } finally {
    await router.stop();
    await orthanc.stop();
    await ws.stop();
  }
});

test.serial('through the router\'s own move-destination listener: the priors are routed on to the workstation', async (t) => {
  const data = tempDir('prefetch-data-');
  const wsDir = tempDir('prefetch-ws-');
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  const movePort = await freePort();
  const orthanc = await startOrthanc({ modalities: { router: ['ROUTER_MOVE', '127.0.0.1', movePort] } });
  const prior = await makeStudy(data, { patientId: 'P9', modality: 'CT', daysAgo: 30, description: 'PRIOR' });
  const trigger = await makeStudy(data, { patientId: 'P9', modality: 'CT', daysAgo: 0, description: 'NEW', count: 1 });
  await orthanc.store(prior.files);
  const rules = `rules:
  - name: prefetch
    when: [{ listener: main }]
    then: { prefetch: { archive: ARCHIVE, destination: ROUTER_MOVE } }
  - name: priors-to-workstation
    when: [{ listener: move }]
    then: { forward: [WS] }
`;
  const dir = tempDir('prefetch-router-');
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'rules', 'rules.yaml'), rules);
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' }, { name: 'move', aeTitles: ['ROUTER_MOVE'], port: movePort, bind: '127.0.0.1' }],
    peers: [{ name: 'ARCHIVE', aeTitle: 'ORTHANC', host: '127.0.0.1', port: orthanc.port }, { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: ws.port, idleReleaseSeconds: 1 }],
    routing: { rulesDir: join(dir, 'rules') },
  }), join(dir, 'router.yaml'));
  config.listeners[0].port = 0;
  const router = await startRouter(config, { logger: silent, watchRules: false });
  try {
    await storescu(router.ports.get('main')!, trigger.files);
    const [job] = await jobsSettled(router, 1);
    t.is(job.state, 'done', job.reason);
    const deadline = Date.now() + 10_000;
    while ((await receivedSops(wsDir)).length < prior.sops.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(await receivedSops(wsDir), [...prior.sops].sort());
  } finally {
    await router.stop();
    await orthanc.stop();
    await ws.stop();
  }
});

test.serial('the archive down: the job fails with the reason after its retries; the archive back: a retry succeeds', async (t) => {
  const data = tempDir('prefetch-data-');
  const wsDir = tempDir('prefetch-ws-');
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  const archivePort = await freePort();
  const prior = await makeStudy(data, { patientId: 'P5', modality: 'CT', daysAgo: 30, description: 'PRIOR' });
  const { router, port } = await routerFor(archivePort, RULE.replace('modalities: [CT, MR], within: 5y, max: 2', 'max: 2'), { retry: { attempts: 3, initialBackoffSeconds: 1, maxBackoffSeconds: 1 } });
  let orthanc: Orthanc | undefined;
  try {
    const first = await makeStudy(data, { patientId: 'P5', modality: 'CT', daysAgo: 0, description: 'NEW 1', count: 1 });
    await storescu(port, first.files);
    const [failed] = await jobsSettled(router, 1);
    t.is(failed.state, 'failed');
    t.is(failed.attempts, 3);
    t.regex(failed.reason!, /ECONNREFUSED|connection/);
    t.is(failed.history.filter((h) => h.step.startsWith('waitingToRetry')).length, 2);

    const second = await makeStudy(data, { patientId: 'P5', modality: 'CT', daysAgo: 0, description: 'NEW 2', count: 1 });
    await storescu(port, second.files);
    // The first attempt fails at once; the archive comes back before the retry.
    const deadline = Date.now() + 10_000;
    while (!router.prefetch.list().some((j) => j.triggeringStudy === second.uid && j.state === 'waitingToRetry') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    orthanc = await startOrthanc({ port: archivePort, modalities: { ws: ['WS', '127.0.0.1', ws.port] } });
    await orthanc.store(prior.files);
    const jobs = await jobsSettled(router, 2);
    const retried = jobs.find((j) => j.triggeringStudy === second.uid)!;
    t.is(retried.state, 'done', retried.reason);
    t.is(retried.attempts, 1);
    t.deepEqual(retried.priors!.map((p) => [p.studyInstanceUid, p.state]), [[prior.uid, 'moved']]);
    t.deepEqual(await receivedSops(wsDir), [...prior.sops].sort());
  } finally {
    await router.stop();
    await orthanc?.stop();
    await ws.stop();
  }
});
