// Reading workstations asking the router (issue 16, their conformance statements in ../shared/conformance/):
// - PixelMed (pixelmed.jar, Debian's pixelmed-apps) browses Study Root hierarchically, as its viewer
//   does: STUDY, then the SERIES of each study, then the IMAGEs of each series, each level carrying the
//   unique keys of the levels above; then moves a study, and gets one (C-GET, SCP role selection).
// - Canon Virtual Place: one association per query level (a scripted sequence of findscu runs, Study
//   Root, Implicit VR Little Endian only, ISO 2022 IR 87), then a C-MOVE to the Retrieve AE Title the
//   answers gave (the router, which fills it in).
// - The query's character set passes upstream unchanged: a scripted archive records the identifier's
//   bytes (ISO_IR 100, ISO 2022 IR 87, ISO_IR 192), and its ISO 2022 IR 87 match reaches findscu byte for byte.
import test from 'ava';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import type { RunningRouter } from '../../actors/router.ts';
import { parseConfig } from '../../config/config.ts';
import { newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import type { Orthanc } from '../helpers/orthanc.ts';
import { DCMTK_ENV, freePort, run, startStorescp, tempDir } from '../helpers/processes.ts';
import type { Started } from '../helpers/processes.ts';
import { scriptedQrScp } from '../helpers/scripted-qr-scp.ts';
import type { ScriptedQrScp } from '../helpers/scripted-qr-scp.ts';

const PIXELMED = '/usr/share/java/pixelmed.jar';
const PIXELMED_QR = join(import.meta.dirname, '../helpers/pixelmed/PixelmedQr.java');
// PS3.5 H.3.1, byte for byte (as Canon Virtual Place sends it).
const H31 = 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';

type Study = { uid: string; series: string[]; sops: string[] };
type World = {
  arch: Orthanc; ws: Started & { port: number }; wsDir: string; scripted: ScriptedQrScp; router: RunningRouter;
  port: number; scriptedPort: number; archived: Study; held: Study; jisMatch: Uint8Array;
};
let world: World;

async function makeStudy(dir: string, patientId: string, seriesCount: number, perSeries: number): Promise<Study & { files: string[] }> {
  const uid = newUid();
  const files: string[] = [];
  const series: string[] = [];
  for (let s = 0; s < seriesCount; s++) {
    const seriesUid = newUid();
    series.push(seriesUid);
    files.push(...writeDataset(join(dir, uid, String(s)), {
      sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: perSeries, pixelBytes: 512, patientId, patientName: `WS^${patientId}`,
      modality: 'CT', studyDate: '20240101', accessionNumber: `A-${patientId}`, studyInstanceUid: uid, seriesInstanceUid: seriesUid,
    }));
  }
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  return { uid, series, sops, files };
}

/** A dataset written by dump2dcm from a dump whose bytes are given as they are (an ISO 2022 name). */
async function dumped(lines: string[]): Promise<{ file: string; dataset: Uint8Array }> {
  const dir = tempDir('ws-query-');
  writeFileSync(join(dir, 'q.dump'), Buffer.from(lines.join('\n') + '\n', 'latin1'));
  const r = await run('dump2dcm', ['+te', join(dir, 'q.dump'), join(dir, 'q.dcm')]);
  if (r.code !== 0) throw new Error(`dump2dcm failed: ${r.stdout}${r.stderr}`);
  const f = await readPart10File(join(dir, 'q.dcm'));
  const bytes = readFileSync(f.path);
  return { file: join(dir, 'q.dcm'), dataset: new Uint8Array(bytes.subarray(f.datasetOffset, f.datasetOffset + f.datasetLength)) };
}

test.before(async () => {
  const dir = tempDir('qr-ws-');
  const wsDir = join(dir, 'ws');
  mkdirSync(wsDir);
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  // The archive knows the router (C-GET's retrieve-through moves into it) and the workstation.
  const mainPort = await freePort();
  const arch = await startOrthanc({ aeTitle: 'ARCH', modalities: { WS: ['WS', '127.0.0.1', ws.port], DICOM_ROUTER: ['DICOM_ROUTER', '127.0.0.1', mainPort] } });
  const archived = await makeStudy(dir, 'WS-P1', 2, 2);
  const held = await makeStudy(dir, 'WS-P2', 1, 3);
  await arch.store(archived.files);
  // The scripted archive answers every C-FIND with one match whose name is ISO 2022 IR 87.
  const jisMatch = (await dumped(['(0008,0005) CS [\\ISO 2022 IR 87]', '(0008,0052) CS [STUDY]', `(0010,0010) PN [${H31}]`, '(0010,0020) LO [JIS-P]', `(0020,000d) UI [${newUid()}]`])).dataset;
  const scripted = await scriptedQrScp(() => [{ status: 0xff00, identifier: jisMatch }, { status: 0x0000 }]);
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), 'rules: []\n');
  const peer = (name: string, port: number) => ({ name, aeTitle: name, host: '127.0.0.1', port, callingAeTitle: 'DICOM_ROUTER', timeouts: { connectSeconds: 3, dimseSeconds: 20 } });
  const listener = (name: string, port: number, sources: string[]) => ({ name, aeTitles: ['DICOM_ROUTER'], port, bind: '127.0.0.1', queryRetrieve: { sources, move: 'relay' } });
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [listener('main', mainPort, ['ARCH', 'local']), listener('scripted', 2, ['SCRIPTED'])],
    peers: [peer('ARCH', arch.port), peer('WS', ws.port), peer('SCRIPTED', scripted.port)],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  // A free port, chosen by the system when the listener binds.
  config.listeners[1].port = 0;
  // QR_WS_LOG=/path/file keeps the router's log (debug) of a run, to see what a workstation met.
  const router = await startRouter(config, { logger: pino({ level: process.env.QR_WS_LOG ? 'debug' : 'warn' }, { write: (l: string) => { if (process.env.QR_WS_LOG) appendFileSync(process.env.QR_WS_LOG, l); } }), watchRules: false });
  const port = router.ports.get('main')!;
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(port), ...held.files], { env: DCMTK_ENV });
  if (sent.code !== 0) throw new Error(`storescu to the router failed: ${sent.stderr}`);
  world = { arch, ws, wsDir, scripted, router, port, scriptedPort: router.ports.get('scripted')!, archived, held, jisMatch };
});

test.after.always(async () => {
  await world?.router.stop(1000);
  await Promise.all([world?.arch.stop(), world?.ws.stop(), world?.scripted.close()]);
});

async function pixelmed(args: string[]): Promise<string> {
  const r = await run('java', ['-cp', PIXELMED, PIXELMED_QR, ...args], { env: DCMTK_ENV, timeoutMs: 120_000 });
  // Java's source launcher compiles the helper: it needs a JDK (jdk.compiler), not only a JRE.
  if (/jdk\.compiler/.test(r.stderr)) throw new Error(`a JDK is needed to run ${PIXELMED_QR}: apt-get install -y default-jdk-headless\n${r.stderr}`);
  if (r.code !== 0) throw new Error(`PixelMed ${args[0]} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** SOP Instance UIDs storescp has received. */
async function received(): Promise<string[]> {
  const names = readdirSync(world.wsDir).filter((n) => !n.startsWith('.'));
  return (await Promise.all(names.map(async (n) => (await readPart10File(join(world.wsDir, n))).sopInstanceUid))).sort();
}

test.serial('PixelMed browses hierarchically through the router: studies, their series, their images (upper-level unique keys at each level), from the archive and the spool', async (t) => {
  const out = await pixelmed(['tree', '127.0.0.1', String(world.port), 'DICOM_ROUTER', 'PIXELMED', 'PatientID=WS-P*', 'PatientName', 'StudyDate', 'StudyInstanceUID', 'Modality', 'SeriesInstanceUID', 'SOPInstanceUID']);
  const rows = out.trim().split('\n').map((l) => l.split('\t'));
  const at = (level: string) => rows.filter((r) => r[0] === level).map((r) => r[1]).sort();
  t.deepEqual(at('STUDY'), [world.archived.uid, world.held.uid].sort(), out);
  t.deepEqual(at('SERIES'), [...world.archived.series, ...world.held.series].sort(), out);
  t.deepEqual(at('INSTANCE'), [...world.archived.sops, ...world.held.sops].sort(), out);
  // Each series under its own study, each image under its own series: every level's query named the one above.
  const under = (level: string, parent: string) => {
    const seen: Record<string, string[]> = {};
    let current = '';
    for (const [l, uid] of rows) {
      if (l === parent) current = uid;
      else if (l === level) (seen[current] ??= []).push(uid);
    }
    return Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.sort()]));
  };
  t.deepEqual(under('SERIES', 'STUDY'), { [world.archived.uid]: [...world.archived.series].sort(), [world.held.uid]: [...world.held.series] });
});

test.serial('PixelMed moves a study through the router: from the spool, and relayed from the archive', async (t) => {
  t.regex(await pixelmed(['move', '127.0.0.1', String(world.port), 'DICOM_ROUTER', 'PIXELMED', 'WS', 'STUDY', `StudyInstanceUID=${world.held.uid}`]), /STATUS 0x0000/);
  t.regex(await pixelmed(['move', '127.0.0.1', String(world.port), 'DICOM_ROUTER', 'PIXELMED', 'WS', 'STUDY', `StudyInstanceUID=${world.archived.uid}`]), /STATUS 0x0000/);
  const got = await received();
  t.deepEqual([...world.held.sops, ...world.archived.sops].filter((s) => got.includes(s)).sort(), [...world.held.sops, ...world.archived.sops].sort());
});

test.serial('PixelMed C-GET through the router (SCP role selection): from the spool, and retrieved through the router from the archive', async (t) => {
  for (const study of [world.held, world.archived]) {
    const folder = tempDir('pixelmed-get-');
    const out = await pixelmed(['get', '127.0.0.1', String(world.port), 'DICOM_ROUTER', 'PIXELMED', folder, 'STUDY', `StudyInstanceUID=${study.uid}`]);
    const files = readdirSync(folder).filter((n) => !n.startsWith('.'));
    const sops = (await Promise.all(files.map(async (n) => (await readPart10File(join(folder, n))).sopInstanceUid))).sort();
    t.deepEqual(sops, [...study.sops].sort(), out);
    t.is(out.split('\n').filter((l) => l.startsWith('RECEIVED ')).length, study.sops.length);
  }
});

/** findscu as Virtual Place runs it: Study Root, Implicit VR Little Endian only, a new association each time. */
async function vpFind(keys: string[]): Promise<Record<string, string>[]> {
  const out = tempDir('vp-find-');
  const r = await run('findscu', ['-S', '-xi', '-aet', 'VP', '-aec', 'DICOM_ROUTER', '-X', '-od', out, ...keys.flatMap((k) => ['-k', k]), '127.0.0.1', String(world.port)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`findscu failed: ${r.stdout}${r.stderr}`);
  const files = readdirSync(out).filter((n) => n.startsWith('rsp')).sort();
  return Promise.all(files.map(async (n) => {
    const d = await run('dcmdump', ['-q', '+P', '0020,000d', '+P', '0020,000e', '+P', '0008,0018', '+P', '0008,0054', '+P', '0008,0005', join(out, n)]);
    const pick = (tag: string) => /\[([^\]]*)\]/.exec(d.stdout.split('\n').find((l) => l.startsWith(`(${tag})`)) ?? '')?.[1] ?? '';
    return { study: pick('0020,000d'), series: pick('0020,000e'), sop: pick('0008,0018'), retrieveAe: pick('0008,0054'), charset: pick('0008,0005') };
  }));
}

test.serial('Virtual Place: one association per query level (ISO 2022 IR 87, implicit VR), then a C-MOVE to the Retrieve AE Title it was given', async (t) => {
  const cs = 'SpecificCharacterSet=\\ISO 2022 IR 87';
  const studies = await vpFind([cs, 'QueryRetrieveLevel=STUDY', 'PatientID=WS-P1', 'StudyInstanceUID', 'RetrieveAETitle']);
  t.deepEqual(studies.map((s) => s.study), [world.archived.uid]);
  t.is(studies[0].retrieveAe, 'DICOM_ROUTER', 'the retrieve comes back through the router');
  const series = await vpFind([cs, 'QueryRetrieveLevel=SERIES', `StudyInstanceUID=${world.archived.uid}`, 'SeriesInstanceUID']);
  t.deepEqual(series.map((s) => s.series).sort(), [...world.archived.series].sort());
  const images = await vpFind([cs, 'QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${world.archived.uid}`, `SeriesInstanceUID=${world.archived.series[0]}`, 'SOPInstanceUID']);
  t.is(images.length, 2);
  t.true(images.every((i) => world.archived.sops.includes(i.sop)));
  const r = await run('movescu', ['-S', '-xi', '-aet', 'VP', '-aec', studies[0].retrieveAe, '-aem', 'WS', '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${world.archived.uid}`, '-k', `SeriesInstanceUID=${world.archived.series[0]}`, '-k', `SOPInstanceUID=${images[0].sop}`, '127.0.0.1', String(world.port)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.true((await received()).includes(images[0].sop));
});

const indexOf = (hay: Uint8Array, needle: Uint8Array) => Buffer.from(hay).indexOf(Buffer.from(needle));

test.serial('the query\'s character set goes upstream unchanged (ISO_IR 100, ISO 2022 IR 87, ISO_IR 192), and an ISO 2022 IR 87 match comes back byte for byte', async (t) => {
  const cases: [string, string, BufferEncoding][] = [
    ['ISO_IR 100', 'MÜLLER*', 'latin1'],
    ['\\ISO 2022 IR 87', H31, 'latin1'],
    ['ISO_IR 192', '山田*', 'utf8'],
  ];
  for (const [charset, name, encoding] of cases) {
    const before = world.scripted.requests.length;
    const dir = tempDir('ws-cs-');
    writeFileSync(join(dir, 'q.dump'), Buffer.from([`(0008,0005) CS [${charset}]`, '(0008,0052) CS [STUDY]', `(0010,0010) PN [${name}]`, '(0020,000d) UI []'].join('\n') + '\n', encoding));
    const made = await run('dump2dcm', ['+te', join(dir, 'q.dump'), join(dir, 'q.dcm')]);
    t.is(made.code, 0, made.stderr);
    const out = tempDir('ws-cs-out-');
    const r = await run('findscu', ['-S', '-xe', '-aet', 'VP', '-aec', 'DICOM_ROUTER', '-X', '-od', out, '127.0.0.1', String(world.scriptedPort), join(dir, 'q.dcm')], { env: DCMTK_ENV, timeoutMs: 60_000 });
    t.is(r.code, 0, r.stdout + r.stderr);
    const seen = world.scripted.requests.slice(before);
    t.is(seen.length, 1);
    const nameBytes = Buffer.from(name, encoding);
    t.true(indexOf(seen[0].bytes, nameBytes) >= 0, `${charset}: the name's bytes reached the archive unchanged`);
    t.true(indexOf(seen[0].bytes, Buffer.from(charset, 'latin1')) >= 0, `${charset}: and its Specific Character Set`);
    const rsp = readdirSync(out).filter((n) => n.startsWith('rsp'));
    t.is(rsp.length, 1);
    const f = await readPart10File(join(out, rsp[0]));
    const dataset = readFileSync(f.path).subarray(f.datasetOffset, f.datasetOffset + f.datasetLength);
    t.true(indexOf(dataset, Buffer.from(H31, 'latin1')) >= 0, 'the archive\'s ISO 2022 IR 87 name reached findscu byte for byte');
  }
});
