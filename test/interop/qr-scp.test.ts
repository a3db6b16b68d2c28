// Query/Retrieve through the router against real peers (issue 16): DCMTK findscu and movescu ask the
// router, which fronts two Orthanc archives holding overlapping studies and holds a study of its own
// (sent by storescu); the move destination is a DCMTK storescp.
import test from 'ava';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import type { RunningRouter } from '../../actors/router.ts';
import { parseConfig } from '../../config/config.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { textOf } from '../../protocol/qr-matching.ts';
import { makeInstance, newUid, SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import type { Orthanc } from '../helpers/orthanc.ts';
import { DCMTK_ENV, freePort, run, startProcess, startStorescp, tempDir } from '../helpers/processes.ts';
import type { Started } from '../helpers/processes.ts';
import { scriptedScp } from '../helpers/scripted-scp.ts';
import type { ScriptedScp } from '../helpers/scripted-scp.ts';
import { slowProxy } from '../helpers/slow-proxy.ts';
import type { SlowProxy } from '../helpers/slow-proxy.ts';
import { pino } from 'pino';
import type { AnyActorRef } from 'xstate';
import { retrievalsOf } from '../../actors/observe/console-retrievals.ts';
import type { RetrievalShown } from '../../actors/observe/console-retrievals.ts';

const JAPANESE_NAME = 'Yamada^Tarou=山田^太郎=やまだ^たろう';
// PS3.5 H.3.1, byte for byte (as Canon Virtual Place and PixelMed send it).
const H31 = 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';

type Study = { uid: string; files: string[]; sops: string[]; patientId: string };

async function makeStudy(dir: string, opts: { patientId: string; patientName: string; modality: string; studyDate: string; accession: string; count?: number; issuer?: string }): Promise<Study> {
  const uid = newUid();
  const files = writeDataset(join(dir, uid), {
    sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count: opts.count ?? 2, pixelBytes: 512,
    patientId: opts.patientId, patientName: opts.patientName, modality: opts.modality, studyDate: opts.studyDate, accessionNumber: opts.accession, studyInstanceUid: uid,
    ...(opts.issuer ? { issuerOfPatientId: opts.issuer } : {}),
  });
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  return { uid, files, sops, patientId: opts.patientId };
}

type World = {
  arch1: Orthanc; arch2: Orthanc; ws: Started & { port: number }; wsDir: string;
  router: RunningRouter; port: number;
  /** Listeners with other sources: ARCH1 + a dead archive + the spool; only the dead one; ARCH1 + ARCH2 behind a slow link; the dead one + the spool. */
  ports: { down: number; allDown: number; slow: number; spool: number; through: number };
  both: Study; only1: Study; only2: Study; local: Study;
  /** In ARCH2 only, for retrieve-through (the destination has nothing of it before). */
  through: Study;
  /** In ARCH2 only, larger: a retrieve-through C-MOVE cancelled half-way. */
  cancelled: Study;
  /** Held by the router only: a Latin-1 name (ISO_IR 100) and the PS3.5 H.3.1 Japanese name (ISO 2022 IR 87). */
  latin: Study; japanese: string;
  /** Patient ID ISS-P from two issuers: HOSP-A in ARCH1 (and in the spool), HOSP-B in ARCH2. */
  issuerA: Study; issuerB: Study;
  /** ARCH2's C-STOREs to the router's retrieve-through listener pass a slow link. */
  throughProxy: SlowProxy;
  dying: ScriptedScp; proxy: SlowProxy;
  /** The router's log lines (pino JSON). */
  logLines: string[];
};
let world: World;

test.before(async () => {
  const dir = tempDir('qr-scp-');
  const wsDir = join(dir, 'ws');
  mkdirSync(wsDir);
  const ws = await startStorescp(wsDir, { aeTitle: 'WS' });
  const ports = { down: await freePort(), allDown: await freePort(), slow: await freePort(), spool: await freePort(), through: await freePort() };
  // The archives move retrieve-through studies to the router (AE DICOM_ROUTER), through a slow link.
  const throughProxy = await slowProxy(ports.through, 300);
  const modalities = { WS: ['WS', '127.0.0.1', ws.port] as [string, string, number], DICOM_ROUTER: ['DICOM_ROUTER', '127.0.0.1', throughProxy.port] as [string, string, number] };
  const [arch1, arch2] = await Promise.all([startOrthanc({ aeTitle: 'ARCH1', modalities }), startOrthanc({ aeTitle: 'ARCH2', modalities })]);
  const both = await makeStudy(dir, { patientId: 'QR-P1', patientName: 'DOE^JOHN', modality: 'CT', studyDate: '20230105', accession: 'A-BOTH' });
  const only1 = await makeStudy(dir, { patientId: 'QR-P1', patientName: 'DOE^JOHN', modality: 'MR', studyDate: '20240210', accession: 'A-ONE' });
  const only2 = await makeStudy(dir, { patientId: 'QR-P2', patientName: 'ROE^JANE', modality: 'CT', studyDate: '20250320', accession: 'A-TWO', count: 3 });
  const local = await makeStudy(dir, { patientId: 'QR-P3', patientName: 'POE^EDGAR', modality: 'US', studyDate: '20221111', accession: 'A-LOCAL' });
  const through = await makeStudy(dir, { patientId: 'RT-P4', patientName: 'THROUGH^TEST', modality: 'CT', studyDate: '20200101', accession: 'A-THROUGH', count: 4 });
  const cancelled = await makeStudy(dir, { patientId: 'RT-P5', patientName: 'CANCEL^TEST', modality: 'CT', studyDate: '20200102', accession: 'A-CANCEL', count: 8 });
  const latin = await makeStudy(dir, { patientId: 'CS-P6', patientName: 'MÜLLER^JÜRGEN', modality: 'MR', studyDate: '20210101', accession: 'A-LATIN', count: 1 });
  const issuerA = await makeStudy(dir, { patientId: 'ISS-P', patientName: 'SAME^ID', modality: 'CT', studyDate: '20180101', accession: 'A-ISS-A', count: 1, issuer: 'HOSP-A' });
  const issuerB = await makeStudy(dir, { patientId: 'ISS-P', patientName: 'OTHER^PERSON', modality: 'CT', studyDate: '20180202', accession: 'A-ISS-B', count: 1, issuer: 'HOSP-B' });
  const japanese = join(dir, 'h31.dcm');
  writeFileSync(japanese, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 512, patientId: 'CS-P7', studyInstanceUid: newUid(), studyDate: '20190101' }));
  const jis = await run('dcmodify', ['-nb', '-i', '(0008,0005)=\\ISO 2022 IR 87', '-i', `(0010,0010)=${H31}`, japanese]);
  if (jis.code !== 0) throw new Error(`dcmodify failed: ${jis.stdout}${jis.stderr}`);
  await arch1.store([...both.files, ...only1.files, ...issuerA.files]);
  await arch2.store([...both.files, ...only2.files, ...through.files, ...cancelled.files, ...issuerB.files]);

  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'rules.yaml'), 'rules: []\n');
  const peer = (name: string, port: number, aeTitle = name) => ({ name, aeTitle, host: '127.0.0.1', port, callingAeTitle: 'DICOM_ROUTER', timeouts: { connectSeconds: 3, dimseSeconds: 20 } });
  // The destination that dies mid-way: resets the connection on the second instance's data.
  const dying = await scriptedScp({ fault: (fragment) => (fragment === 2 ? 'reset' : undefined) });
  // ARCH2 behind a link that holds each chunk the router sends it for a while: the slower archive.
  const proxy = await slowProxy(arch2.port, 700);
  const listener = (name: string, port: number, sources: string[], move = 'relay') => ({ name, aeTitles: ['DICOM_ROUTER'], port, bind: '127.0.0.1', queryRetrieve: { sources, move } });
  const config = parseConfig(stringify({
    storage: { dir: join(dir, 'data'), fsync: false },
    listeners: [
      listener('main', 1, ['ARCH1', 'ARCH2', 'local']),
      listener('down', ports.down, ['ARCH1', 'DOWN', 'local']),
      listener('allDown', ports.allDown, ['DOWN']),
      listener('slow', ports.slow, ['ARCH1', 'SLOW2']),
      listener('spool', ports.spool, ['DOWN', 'local']),
      listener('through', ports.through, ['ARCH1', 'ARCH2', 'local'], 'retrieve-through'),
    ],
    peers: [
      peer('ARCH1', arch1.port), peer('ARCH2', arch2.port), peer('WS', ws.port), peer('DOWN', await freePort()),
      peer('SLOW2', proxy.port, 'ARCH2'), peer('DYING', dying.port),
    ],
    routing: { rulesDir },
  }), join(dir, 'router.yaml'));
  config.listeners[0].port = 0;
  const logLines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const router = await startRouter(config, { logger, watchRules: false });
  const port = router.ports.get('main')!;
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(port), ...local.files, ...latin.files, ...issuerA.files, japanese], { env: DCMTK_ENV });
  if (sent.code !== 0) throw new Error(`storescu to the router failed: ${sent.stderr}`);
  world = { arch1, arch2, ws, wsDir, router, port, ports, both, only1, only2, local, through, cancelled, latin, japanese, issuerA, issuerB, dying, proxy, throughProxy, logLines };
});

test.after.always(async () => {
  await world?.router.stop(1000);
  await Promise.all([world?.arch1.stop(), world?.arch2.stop(), world?.ws.stop(), world?.dying.close(), world?.proxy.close(), world?.throughProxy.close()]);
});

type FindOutput = { code: number | null; matches: Record<string, unknown>[]; log: string };

/** findscu against the router; the matches it extracted (rsp*.dcm), parsed. */
async function findscu(args: string[], keys: string[], opts: { port?: number; model?: '-S' | '-P'; queryFile?: string } = {}): Promise<FindOutput> {
  const out = tempDir('findscu-');
  const r = await run('findscu', ['-v', opts.model ?? '-S', '-aet', 'FINDSCU', '-aec', 'DICOM_ROUTER', '-X', '-od', out, ...args, ...keys.flatMap((k) => ['-k', k]), '127.0.0.1', String(opts.port ?? world.port), ...(opts.queryFile ? [opts.queryFile] : [])], { env: DCMTK_ENV, timeoutMs: 60_000 });
  const files = readdirSync(out).filter((n) => n.startsWith('rsp')).sort();
  const matches = await Promise.all(files.map(async (n) => {
    const f = await readPart10File(join(out, n));
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(f.path);
    return parseHeader(bytes.subarray(f.datasetOffset, f.datasetOffset + f.datasetLength), f.transferSyntaxUid).dataset;
  }));
  rmSync(out, { recursive: true, force: true });
  return { code: r.code, matches, log: r.stdout + r.stderr };
}

const values = (matches: Record<string, unknown>[], key: string) => matches.map((m) => textOf(m[key])).sort();

type TreeSeen = { jobs: Set<string>; associations: Set<string>; transactions: Set<string>; retrievals: RetrievalShown[] };

/**
 * Watches the root's children while something runs: the Q/R jobs whose id starts with `prefix`, their
 * association children (id: association:PEER#n) with the PS3.8 state and machine of each one's own
 * transactions, and what the console's Retrievals section shows. Call the result to stop.
 */
function watchTree(prefix: string): () => Promise<TreeSeen> {
  const seen: TreeSeen = { jobs: new Set(), associations: new Set(), transactions: new Set(), retrievals: [] };
  const root = world.router.actor as unknown as AnyActorRef;
  type Ref = AnyActorRef & { _parent?: Ref; logic?: { id?: string } };
  const isJob = (ref: Ref | undefined) => ref !== undefined && ref._parent === root && ref.id.startsWith(prefix);
  // Inspection events, not polling: a transaction may live shorter than a timer tick on a busy machine.
  const inspection = root.system.inspect((e) => {
    const ref = e.actorRef as Ref;
    if (isJob(ref)) seen.jobs.add(ref.id);
    if (!isJob(ref._parent)) {
      if (isJob(ref._parent?._parent)) seen.transactions.add(`${ref._parent!.id} ${ref.logic?.id}`);
      return;
    }
    if (e.type === '@xstate.snapshot') seen.associations.add(`${ref.id} ${String((e.snapshot as { value?: unknown }).value)}`);
  });
  let on = true;
  const loop = (async () => {
    while (on) {
      const shown = retrievalsOf(root, false);
      if (shown.length > 0) seen.retrievals = shown;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return async () => {
    on = false;
    inspection.unsubscribe();
    await loop;
    return seen;
  };
}

test.serial('C-FIND STUDY: both archives and the spool, merged, de-duplicated, Retrieve AE Title is the router', async (t) => {
  const r = await findscu([], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientID=QR-P*', 'AccessionNumber', 'RetrieveAETitle']);
  t.is(r.code, 0, r.log);
  t.deepEqual(values(r.matches, 'StudyInstanceUID'), [world.both.uid, world.only1.uid, world.only2.uid, world.local.uid].sort(), 'each study once, from wherever it is');
  t.deepEqual([...new Set(values(r.matches, 'RetrieveAETitle'))], ['DICOM_ROUTER']);
  t.regex(r.log, /Final Find Response.*\n?.*Success|Status.*Success|0x0000/i);
});

test.serial('C-FIND at each level with each matching type (archives and spool)', async (t) => {
  const range = await findscu([], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'StudyDate=20230101-20241231']);
  t.deepEqual(values(range.matches, 'StudyInstanceUID'), [world.both.uid, world.only1.uid].sort(), 'range');
  const list = await findscu([], ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${world.only2.uid}\\${world.local.uid}`]);
  t.deepEqual(values(list.matches, 'StudyInstanceUID'), [world.only2.uid, world.local.uid].sort(), 'UID list');
  const patients = await findscu([], ['QueryRetrieveLevel=PATIENT', 'PatientID', 'PatientName=*OE^J*'], { model: '-P' });
  t.deepEqual(values(patients.matches, 'PatientID'), ['QR-P1', 'QR-P2'], 'wildcard, patient level, de-duplicated');
  const series = await findscu([], ['QueryRetrieveLevel=SERIES', `StudyInstanceUID=${world.local.uid}`, 'SeriesInstanceUID', 'Modality=US', 'NumberOfSeriesRelatedInstances']);
  t.is(series.matches.length, 1, 'single value, series level (the spool)');
  t.is(textOf(series.matches[0].NumberOfSeriesRelatedInstances), '2');
  const images = await findscu([], ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${world.only2.uid}`, `SeriesInstanceUID=${textOf((await findscu([], ['QueryRetrieveLevel=SERIES', `StudyInstanceUID=${world.only2.uid}`, 'SeriesInstanceUID'])).matches[0]?.SeriesInstanceUID)}`, 'SOPInstanceUID']);
  t.deepEqual(values(images.matches, 'SOPInstanceUID'), [...world.only2.sops].sort(), 'image level, universal');
});

test.serial('PATIENT level: the same Patient ID from two issuers is two patients (merged from both archives and the spool), the issuer returned and matched', async (t) => {
  const r = await findscu([], ['QueryRetrieveLevel=PATIENT', 'PatientID=ISS-P', 'IssuerOfPatientID', 'PatientName'], { model: '-P' });
  t.is(r.code, 0, r.log);
  t.deepEqual(r.matches.map((m) => `${textOf(m.PatientID)}|${textOf(m.IssuerOfPatientID)}`).sort(), ['ISS-P|HOSP-A', 'ISS-P|HOSP-B'], 'HOSP-A once (ARCH1 and the spool), HOSP-B once (ARCH2)');
  // The spool alone: the issuer kept in its index, matched and returned.
  const local = await findscu([], ['QueryRetrieveLevel=PATIENT', 'PatientID=ISS-P', 'IssuerOfPatientID=HOSP-A', 'NumberOfPatientRelatedInstances'], { model: '-P', port: world.ports.spool });
  t.deepEqual(local.matches.map((m) => [textOf(m.IssuerOfPatientID), textOf(m.NumberOfPatientRelatedInstances)]), [['HOSP-A', '1']], local.log);
  const none = await findscu([], ['QueryRetrieveLevel=PATIENT', 'PatientID=ISS-P', 'IssuerOfPatientID=HOSP-B'], { model: '-P', port: world.ports.spool });
  t.is(none.matches.length, 0, 'the spool holds HOSP-A only');
  // Asked without the issuer, the matches carry none: the key added upstream for merging is taken out again.
  const plain = await findscu([], ['QueryRetrieveLevel=PATIENT', 'PatientID=ISS-P'], { model: '-P' });
  t.is(plain.matches.length, 2, plain.log);
  t.true(plain.matches.every((m) => m.IssuerOfPatientID === undefined || textOf(m.IssuerOfPatientID) === ''), JSON.stringify(plain.matches));
});

test.serial('C-FIND of what only the spool holds: local matches at each level', async (t) => {
  const study = await findscu([], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=POE*', 'ModalitiesInStudy', 'NumberOfStudyRelatedInstances']);
  t.is(study.matches.length, 1);
  t.like({ uid: textOf(study.matches[0].StudyInstanceUID), mods: textOf(study.matches[0].ModalitiesInStudy), n: textOf(study.matches[0].NumberOfStudyRelatedInstances) }, { uid: world.local.uid, mods: 'US', n: '2' });
  const images = await findscu([], ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${world.local.uid}`, 'SOPInstanceUID']);
  t.deepEqual(values(images.matches, 'SOPInstanceUID'), [...world.local.sops].sort());
});

test.serial('findscu --cancel 1: one match, then FE00; the upstream C-FIND still under way is cancelled', async (t) => {
  const before = world.logLines.length;
  // The slow listener: ARCH1 answers at once, the slow ARCH2 is still being asked when findscu cancels.
  const r = await findscu(['--cancel', '1'], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientID=QR-P*'], { port: world.ports.slow });
  t.is(r.code, 0, r.log);
  t.true(r.matches.length >= 1 && r.matches.length < 3, `got ${r.matches.length} matches`);
  t.regex(r.log, /Final Find Response \(Cancel/, r.log);
  const deadline = Date.now() + 30_000;
  const done = () => world.logLines.slice(before).find((l) => l.includes('"msg":"C-FIND done"'));
  while (!done() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
  t.like(JSON.parse(done() ?? '{}'), { cancelled: true }, 'the search ended as cancelled (its upstream C-FIND cancelled and released)');
});

test.serial('an unknown move destination: A801 naming it', async (t) => {
  const r = await run('movescu', ['-d', '-S', '-aet', 'MOVESCU', '-aec', 'DICOM_ROUTER', '-aem', 'NOBODY', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${world.local.uid}`, '127.0.0.1', String(world.port)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  t.regex(r.stdout + r.stderr, /a801|Move Destination unknown|Refused/i);
  t.regex(r.stdout + r.stderr, /NOBODY/);
});

async function received(): Promise<string[]> {
  const names = readdirSync(world.wsDir).filter((n) => !n.startsWith('.'));
  return (await Promise.all(names.map(async (n) => (await readPart10File(join(world.wsDir, n))).sopInstanceUid))).sort();
}

async function movescu(studyUid: string, opts: { port?: number; destination?: string } = {}): Promise<string> {
  const r = await run('movescu', ['-d', '-S', '-aet', 'MOVESCU', '-aec', 'DICOM_ROUTER', '-aem', opts.destination ?? 'WS', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${studyUid}`, '127.0.0.1', String(opts.port ?? world.port)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  return r.stdout + r.stderr;
}

test.serial('C-MOVE of what the spool holds (no archive has it): sent from the spool to storescp', async (t) => {
  const log = await movescu(world.local.uid);
  t.regex(log, /Completed Suboperations *: 2/i, log);
  t.deepEqual((await received()).filter((s) => world.local.sops.includes(s)), [...world.local.sops].sort());
});

test.serial('C-MOVE relayed: the archive that holds the study moves it to the destination, counts relayed', async (t) => {
  const log = await movescu(world.only2.uid);
  t.regex(log, /Completed Suboperations *: 3/i, log);
  t.deepEqual((await received()).filter((s) => world.only2.sops.includes(s)), [...world.only2.sops].sort());
});

test.serial("C-FIND with one archive down: the other sources' matches, a success status, and a log line naming it", async (t) => {
  const r = await findscu([], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientID=QR-P*'], { port: world.ports.down });
  t.is(r.code, 0, r.log);
  t.deepEqual(values(r.matches, 'StudyInstanceUID'), [world.both.uid, world.only1.uid, world.local.uid].sort());
  t.regex(r.log, /Final Find Response \(Success\)/);
  t.true(world.logLines.some((l) => l.includes('"source":"DOWN"') && l.includes('an upstream archive failed')));
});

test.serial('C-FIND with every source down: A700 with an Error Comment', async (t) => {
  const r = await findscu(['-d'], ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID'], { port: world.ports.allDown });
  t.is(r.matches.length, 0);
  t.regex(r.log, /Out of Resources|a700/i);
  t.regex(r.log, /every source failed: DOWN/);
});

test.serial('C-FIND: the first match reaches findscu while the slower archive has not answered', async (t) => {
  const out = tempDir('findscu-slow-');
  const before = world.logLines.length;
  const tree = watchTree('query-');
  const proc = startProcess('findscu', ['-v', '-S', '-aet', 'FINDSCU', '-aec', 'DICOM_ROUTER', '-X', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID', '-k', 'PatientID=QR-P*', '127.0.0.1', String(world.ports.slow)], { env: DCMTK_ENV });
  const deadline = Date.now() + 60_000;
  while (!proc.output().includes('Received Find Response 1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const doneYet = world.logLines.slice(before).some((l) => l.includes('"msg":"C-FIND done"'));
  t.true(proc.output().includes('Received Find Response 1'), proc.output());
  t.false(doneYet, 'the first match was relayed before the search ended (the slow archive still to answer)');
  while (proc.child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.regex(proc.output(), /Final Find Response \(Success\)/);
  const files = readdirSync(out).filter((n) => n.startsWith('rsp'));
  t.is(files.length, 3, 'both, only1 from ARCH1; only2 from the slow ARCH2; both once');
  await proc.stop();
  // The search was a job in the actor tree, each upstream association its child, in the data-transfer
  // state with its C-FIND SCU transaction under it; the job left the tree once they were released.
  const seen = await tree();
  t.is(seen.jobs.size, 1, [...seen.jobs].join());
  t.true([...seen.associations].some((a) => a.startsWith('association:ARCH1#')), [...seen.associations].join());
  t.true(seen.associations.has('association:SLOW2#1 Sta6'), [...seen.associations].join());
  t.true(seen.transactions.has('association:SLOW2#1 cFindScu'), [...seen.transactions].join());
  t.false(Object.keys(world.router.actor.getSnapshot().children).some((id) => id.startsWith('query-')), 'the job left the tree when it ended');
});

test.serial('C-MOVE from the spool alone while the archives are down', async (t) => {
  const log = await movescu(world.local.uid, { port: world.ports.spool });
  t.regex(log, /DIMSE Status *: 0x0000/, log);
  t.regex(log, /Completed Suboperations *: 2/i, log);
});

test.serial('C-MOVE to a destination that dies mid-way: counts say what was delivered, failed UIDs listed, the log names the side', async (t) => {
  const log = await movescu(world.local.uid, { destination: 'DYING' });
  t.regex(log, /Completed Suboperations *: 1/i, log);
  t.regex(log, /Failed Suboperations *: 1/i, log);
  t.regex(log, /DIMSE Status *: 0xb000/i, log);
  const failed = /\(0008,0058\) UI \[([0-9.]+)\]/.exec(log)?.[1];
  t.true(failed !== undefined && world.local.sops.includes(failed), `Failed SOP Instance UID List names one of the study's instances:\n${log}`);
  t.true(world.logLines.some((l) => l.includes('"side":"destination"') && l.includes('the destination failed mid-way')));
});

test.serial('C-MOVE of a study the spool holds only in part: relayed to the archive that holds it all', async (t) => {
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(world.port), world.only1.files[0]], { env: DCMTK_ENV });
  t.is(sent.code, 0, sent.stderr);
  const before = world.logLines.length;
  const tree = watchTree('move-');
  const log = await movescu(world.only1.uid);
  t.regex(log, /DIMSE Status *: 0x0000/, log);
  t.regex(log, /Completed Suboperations *: 2/i, log);
  t.true(world.logLines.slice(before).some((l) => l.includes('"msg":"C-MOVE relayed"') && l.includes('"source":"ARCH1"')));
  // One job: the count asked of ARCH1 (C-FIND) and the relayed C-MOVE, each on an association of its own under it.
  const seen = await tree();
  t.is(seen.jobs.size, 1, [...seen.jobs].join());
  t.true(seen.transactions.has('association:ARCH1#1 cFindScu'), [...seen.transactions].join());
  t.true(seen.transactions.has('association:ARCH1#2 cMoveScu'), [...seen.transactions].join());
  t.deepEqual((await received()).filter((s) => world.only1.sops.includes(s)), [...world.only1.sops].sort());
});

test.serial('C-MOVE retrieve-through: the archive moves the study into the router, each instance goes on as it arrives, and stays cached', async (t) => {
  const before = world.logLines.length;
  // While it runs, the retrieve-through is a job in the actor tree (what the console shows).
  let job: { level?: string; uid?: string; to?: string } | undefined;
  let moving = true;
  const tree = watchTree('retrieve-through-');
  const watch = (async () => {
    while (moving && !job) {
      const child = Object.entries(world.router.actor.getSnapshot().children).find(([id]) => id.startsWith('retrieve-through-'))?.[1];
      job = (child?.getSnapshot() as { context?: typeof job } | undefined)?.context;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const log = await movescu(world.through.uid, { port: world.ports.through });
  moving = false;
  await watch;
  t.like(job, { level: 'STUDY', uid: world.through.uid, to: 'destination WS', requester: 'MOVESCU' });
  // Its upstream association (the C-MOVE into the router) and its deliveries' association are its children.
  const seen = await tree();
  t.true(seen.transactions.has('association:ARCH2#1 cMoveScu'), [...seen.transactions].join());
  t.true([...seen.associations].some((a) => a.startsWith('association:WS#')), [...seen.associations].join());
  t.true([...seen.transactions].some((a) => a.startsWith('association:WS#') && a.endsWith('scuRequest')), [...seen.transactions].join());
  // What the console's Retrievals section showed while it ran.
  t.like(seen.retrievals[0], { service: 'C-MOVE', requester: 'MOVESCU', destination: 'WS', level: 'STUDY', uid: world.through.uid, state: 'retrieving' });
  t.deepEqual(seen.retrievals[0].sources, ['ARCH1', 'ARCH2']);
  t.false(Object.keys(world.router.actor.getSnapshot().children).some((id) => id.startsWith('retrieve-through-')), 'the job left the tree when it ended');
  t.regex(log, /DIMSE Status *: 0x0000/, log);
  t.regex(log, /Completed Suboperations *: 4/i, log);
  t.deepEqual((await received()).filter((s) => world.through.sops.includes(s)), [...world.through.sops].sort());
  const lines = world.logLines.slice(before);
  const first = lines.findIndex((l) => l.includes('retrieve-through: first instance delivered'));
  const upstreamDone = lines.findIndex((l) => l.includes('"msg":"C-MOVE relayed"') && l.includes('"source":"ARCH2"'));
  t.true(first >= 0 && upstreamDone >= 0 && first < upstreamDone, 'the first instance reached the destination before the upstream move finished');
  t.is(world.router.spool.list({ studyInstanceUid: world.through.uid }).length, 4, 'cached in the spool');
});

/** A query file written by dump2dcm from a dump whose bytes are given as they are (a Latin-1 or ISO 2022 name). */
async function queryFile(lines: string[], encoding: BufferEncoding): Promise<string> {
  const dir = tempDir('query-');
  writeFileSync(join(dir, 'q.dump'), Buffer.from(lines.join('\n') + '\n', encoding));
  const r = await run('dump2dcm', [join(dir, 'q.dump'), join(dir, 'q.dcm')]);
  if (r.code !== 0) throw new Error(`dump2dcm failed: ${r.stdout}${r.stderr}`);
  return join(dir, 'q.dcm');
}

test.serial('local C-FIND in the query\'s character set: ISO_IR 100, ISO_IR 192 and ISO 2022 IR 87 names matched', async (t) => {
  const latin = await queryFile(['(0008,0005) CS [ISO_IR 100]', '(0008,0052) CS [STUDY]', '(0010,0010) PN [MÜLLER*]', '(0020,000d) UI []'], 'latin1');
  const r1 = await findscu([], [], { queryFile: latin });
  t.deepEqual(values(r1.matches, 'StudyInstanceUID'), [world.latin.uid], r1.log);
  t.deepEqual(values(r1.matches, 'PatientName'), ['MÜLLER^JÜRGEN']);
  const r2 = await findscu([], ['SpecificCharacterSet=ISO_IR 192', 'QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=*山田*', 'PatientID']);
  t.deepEqual(values(r2.matches, 'PatientID'), ['CS-P7'], r2.log);
  t.deepEqual(values(r2.matches, 'PatientName'), [JAPANESE_NAME]);
  const jis = await queryFile(['(0008,0005) CS [\\ISO 2022 IR 87]', '(0008,0052) CS [STUDY]', `(0010,0010) PN [${H31}]`, '(0010,0020) LO []'], 'latin1');
  const r3 = await findscu([], [], { queryFile: jis });
  t.deepEqual(values(r3.matches, 'PatientID'), ['CS-P7'], r3.log);
});

test.serial('movescu --cancel 1 on a retrieve-through: both sides stop, FE00 with what was delivered', async (t) => {
  const before = world.logLines.length;
  const r = await run('movescu', ['-d', '-S', '--cancel', '1', '-aet', 'MOVESCU', '-aec', 'DICOM_ROUTER', '-aem', 'WS', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${world.cancelled.uid}`, '127.0.0.1', String(world.ports.through)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  const log = r.stdout + r.stderr;
  t.regex(log, /DIMSE Status *: 0xfe00/i, log);
  const counts = [...log.matchAll(/Completed Suboperations *: (\d+)/g)].map((m) => Number(m[1]));
  const completed = counts.at(-1) ?? -1;
  t.true(completed >= 0 && completed < 8, `delivered ${completed} of 8 before the cancel took effect`);
  const done = world.logLines.slice(before).find((l) => l.includes('"msg":"retrieve-through done"'));
  t.like(JSON.parse(done ?? '{}'), { upstreamStatus: 0xfe00 }, `the upstream move was cancelled too: ${done}`);
  t.true(world.router.spool.list({ studyInstanceUid: world.cancelled.uid }).length < 8, 'the archive stopped sending');
});

async function getscu(studyUid: string, port = world.port): Promise<{ log: string; sops: string[] }> {
  const out = tempDir('getscu-');
  const r = await run('getscu', ['-d', '-S', '-aet', 'GETSCU', '-aec', 'DICOM_ROUTER', '-od', out, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${studyUid}`, '127.0.0.1', String(port)], { env: DCMTK_ENV, timeoutMs: 60_000 });
  const names = readdirSync(out).filter((n) => !n.startsWith('.'));
  const sops = (await Promise.all(names.map(async (n) => (await readPart10File(join(out, n))).sopInstanceUid))).sort();
  return { log: r.stdout + r.stderr, sops };
}

test.serial('getscu (SCP role negotiated): what the spool holds comes back over the same association', async (t) => {
  const r = await getscu(world.local.uid);
  t.regex(r.log, /DIMSE Status *: 0x0000/, r.log);
  t.regex(r.log, /Completed Suboperations *: 2/i, r.log);
  t.deepEqual(r.sops, [...world.local.sops].sort());
});

test.serial('getscu of a study only an archive holds: retrieved through the router and sent back as it arrives', async (t) => {
  const r = await getscu(world.both.uid);
  t.regex(r.log, /DIMSE Status *: 0x0000/, r.log);
  t.deepEqual(r.sops, [...world.both.sops].sort());
  t.is(world.router.spool.list({ studyInstanceUid: world.both.uid }).length, world.both.sops.length, 'cached in the spool');
});

test.serial('C-GET from a requester that did not take the SCP role: each sub-operation fails, B000 with the counts', async (t) => {
  const { ScuAssociation } = await import('../../actors/net/scu.ts');
  const { CommandField, DATASET_PRESENT } = await import('../../protocol/dimse.ts');
  const { encodeIdentifier } = await import('../../protocol/dataset-encode.ts');
  const { STUDY_ROOT_GET } = await import('../../protocol/uids.ts');
  const before = world.logLines.length;
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port: world.port, callingAeTitle: 'NOROLE', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: STUDY_ROOT_GET, transferSyntaxes: [TS.explicitLE] }, { abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }],
    logger: pino({ level: 'silent' }),
  });
  const context = scu.contextFor(STUDY_ROOT_GET)!;
  const messageId = scu.newMessageId();
  const outcome = await scu.runTransaction('cMoveScu', context.id, {
    CommandField: CommandField.C_GET_RQ, MessageID: messageId, AffectedSOPClassUID: STUDY_ROOT_GET, Priority: 0, CommandDataSetType: DATASET_PRESENT,
  }, { kind: 'bytes', data: encodeIdentifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: world.local.uid }, TS.explicitLE) });
  await scu.release();
  t.is(outcome.status, 0xb000);
  t.like(outcome.suboperations, { completed: 0, failed: 2, warning: 0 });
  t.true(world.logLines.slice(before).some((l) => l.includes('the requester did not take the SCP role')));
});

test.serial('a bad identifier gets the standard status and an Error Comment: no level (A900), Study Root at PATIENT level (A900)', async (t) => {
  const noLevel = await findscu(['-d'], ['QueryRetrieveLevel=FRAME', 'StudyInstanceUID']);
  t.is(noLevel.matches.length, 0);
  t.regex(noLevel.log, /DIMSE Status *: 0xa900/i, noLevel.log);
  t.regex(noLevel.log, /QueryRetrieveLevel "FRAME": not PATIENT\/STUDY\/SERIES\/IMAGE/);
  const patient = await findscu(['-d'], ['QueryRetrieveLevel=PATIENT', 'PatientID']);
  t.regex(patient.log, /DIMSE Status *: 0xa900/i, patient.log);
  t.regex(patient.log, /Study Root has no PATIENT level/);
});

test.serial('an identifier larger than any real one (over 1 MiB) is drained, not held, and answered C000', async (t) => {
  const { ScuAssociation } = await import('../../actors/net/scu.ts');
  const { STUDY_ROOT_FIND } = await import('../../protocol/uids.ts');
  const { CommandField, DATASET_PRESENT } = await import('../../protocol/dimse.ts');
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port: world.port, callingAeTitle: 'BIG', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: STUDY_ROOT_FIND, transferSyntaxes: [TS.explicitLE] }], logger: pino({ level: 'silent' }), maxPduLength: 65536,
  });
  // (0011,1000) UN of 1.1 MiB after a level: framing is valid, the size is not.
  const big = Buffer.alloc(12 + 1_100_000);
  big.writeUInt16LE(0x0011, 0); big.writeUInt16LE(0x1000, 2); big.write('UN', 4, 'latin1'); big.writeUInt32LE(1_100_000, 8);
  const level = Buffer.from([0x08, 0x00, 0x52, 0x00, 0x43, 0x53, 0x06, 0x00, ...Buffer.from('STUDY ', 'latin1')]);
  const messageId = scu.newMessageId();
  const outcome = await scu.runTransaction('cFindScu', scu.contextFor(STUDY_ROOT_FIND)!.id, {
    CommandField: CommandField.C_FIND_RQ, MessageID: messageId, AffectedSOPClassUID: STUDY_ROOT_FIND, Priority: 0, CommandDataSetType: DATASET_PRESENT,
  }, { kind: 'bytes', data: Buffer.concat([level, big]) });
  await scu.release();
  t.is(outcome.status, 0xc000);
  t.regex(outcome.errorComment ?? '', /identifier larger than 1048576 bytes/);
});
