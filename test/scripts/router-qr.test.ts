// `router find`, `router move` against Orthanc (table and --json), and `router prefetch ls`.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { writeFileSync } from 'node:fs';
import { PrefetchService } from '../../actors/jobs/prefetch.ts';
import { Spool } from '../../actors/ingest/spool.ts';
import { parseConfig } from '../../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { silent } from '../helpers/in-process-router.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import { REPO, run, startStorescp, tempDir } from '../helpers/processes.ts';

const router = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);

test('router find (table, --json) and router move against Orthanc; a C-MOVE to an unknown destination fails', async (t) => {
  const wsDir = tempDir();
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  t.teardown(ws.stop);
  const orthanc = await startOrthanc({ modalities: { ws: ['WS', '127.0.0.1', ws.port] } });
  t.teardown(orthanc.stop);
  const study = newUid();
  await orthanc.store(writeDataset(tempDir(), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: 2, pixelBytes: 512, patientId: 'PX', studyDate: '20210304', modality: 'CT', studyDescription: 'HEAD', studyInstanceUid: study }));
  await orthanc.store(writeDataset(tempDir(), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: 1, pixelBytes: 512, patientId: 'PX', studyDate: '20190101', modality: 'CT' }));
  const peer = `ORTHANC@127.0.0.1:${orthanc.port}`;

  const found = await router('find', peer, '--level', 'STUDY', '-k', 'PatientID=PX', '-k', 'StudyDate=20200101-');
  t.is(found.code, 0, found.stderr);
  const lines = found.stdout.trim().split('\n');
  t.regex(lines[0], /^PatientID\s+PatientName\s+StudyInstanceUID\s+StudyDate/);
  t.is(lines.length, 4, found.stdout); // header, rule, one match, summary
  t.true(lines[2].includes(study) && lines[2].includes('20210304') && lines[2].includes('HEAD'));
  t.is(lines[3], '1 match; success');

  const json = await router('find', peer, '-k', 'PatientID=PX', '--json');
  t.is(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { result: string; matches: Record<string, unknown>[] };
  t.is(parsed.result, 'success');
  t.is(parsed.matches.length, 2);

  const moved = await router('move', peer, '--dest', 'WS', '--study', study);
  t.is(moved.code, 0, moved.stderr + moved.stdout);
  t.regex(moved.stdout, /success\s+0x0000\s+2\s+0\s+0/);
  t.is(readdirSync(wsDir).length, 2);

  const unknown = await router('move', peer, '--dest', 'NOBODY', '--study', study, '--json');
  t.is(unknown.code, 1);
  t.like(JSON.parse(unknown.stdout), { result: 'failed' });
});

test('router prefetch ls lists recorded jobs with their state', async (t) => {
  const dir = tempDir();
  const configFile = join(dir, 'router.yaml');
  writeFileSync(configFile, stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }],
    peers: [{ name: 'ARCHIVE', aeTitle: 'ORTHANC', host: '127.0.0.1', port: 4242 }],
  }));
  const config = parseConfig(stringify({ storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['X'], port: 11112 }], peers: [{ name: 'ARCHIVE', aeTitle: 'ORTHANC', host: '127.0.0.1', port: 4242 }] }), configFile);
  const spool = await Spool.open({ dir: join(dir, 'data'), fsync: false });
  const service = new PrefetchService(spool, config.peers, { logger: silent });
  const action = { archive: 'ARCHIVE', destination: 'WS', queryModel: 'study-root' as const, excludeTriggeringStudy: true, max: 3, dedupHours: 24 };
  let ids: string[] = [];
  await spool.db.transaction(() => {
    ids = service.plan([{ ...action, rule: 'r' }], { studyInstanceUid: '1.2.3', patientId: 'PX' });
  });
  t.is(ids.length, 1);
  // Seen once: a later instance of the same study plans nothing.
  await spool.db.transaction(() => t.deepEqual(service.plan([{ ...action, rule: 'r' }], { studyInstanceUid: '1.2.3', patientId: 'PX' }), []));
  await spool.close();
  const ls = await router('prefetch', 'ls', '--config', configFile);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /^job\s+state\s+patient\s+study\s+archive\s+dest/);
  t.regex(ls.stdout, new RegExp(`${ids[0]}\\s+starting\\s+PX\\s+1\\.2\\.3\\s+ARCHIVE\\s+WS`));
  const json = JSON.parse((await router('prefetch', 'ls', '--config', configFile, '--json')).stdout) as { id: string; history: unknown[] }[];
  t.is(json[0].id, ids[0]);
  t.is(json[0].history.length, 1);
});
