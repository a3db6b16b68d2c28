// Study/series completion triggers (issue 8) with the router in-process: DCMTK storescu sends one
// study as three associations and DCMTK storescp receives it once, after the last series, also across
// a restart during the quiet time; required series, the hard limit, afterFired policies, whenComplete.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { sweepSpool } from '../../../actors/ingest/retention.ts';
import { newUid, SOP, TS, writeDataset } from '../../helpers/dicom-files.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { run, startStorescp, tempDir } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const studyRule = (trigger: string, extra = '') =>
  `rules:\n  - name: study\n    trigger: ${trigger}\n${extra}    then: { forward: [PACS] }\n`;

function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

/** Three series of one study, `per` instances each, as files in three folders. */
function study(dir: string, per = 3): { studyUid: string; series: string[][] } {
  const studyUid = newUid();
  const series = ['CT', 'CT', 'SR'].map((modality, i) =>
    writeDataset(join(dir, `series-${i}`), { count: per, studyInstanceUid: studyUid, modality, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, patientId: 'P1' }));
  return { studyUid, series };
}

async function storescu(t: ExecutionContext, port: number, files: string[]): Promise<void> {
  const r = await run('storescu', ['-aet', 'CT1', '-aec', 'DICOM_ROUTER', '127.0.0.1', String(port), ...files]);
  t.is(r.code, 0, r.stderr);
}

async function receivedSops(dir: string): Promise<string[]> {
  const files = readdirSync(dir).filter((f) => !f.startsWith('.'));
  return Promise.all(files.map(async (f) => (await readPart10File(join(dir, f))).sopInstanceUid));
}

async function pacs(t: ExecutionContext) {
  const dir = tempDir();
  const scp = await startStorescp(dir, { aeTitle: 'PACS', extraArgs: ['+uf'] });
  t.teardown(scp.stop);
  return { dir, peer: { name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port } };
}

test('a study sent as three associations is forwarded once, after the last series, as one batch', async (t) => {
  const { dir, peer } = await pacs(t);
  // A quiet time well above what sending one series takes on a loaded machine, so only the end of the study ends it.
  const r = await routerWith([peer], studyRule('{ per: study, quietSeconds: 8 }'));
  t.teardown(() => r.stop(0));
  const { studyUid, series } = study(tempDir());
  for (const [i, files] of series.entries()) {
    await storescu(t, r.port, files);
    t.is(readdirSync(dir).length, 0, `nothing forwarded after series ${i + 1}`);
    if (i < series.length - 1) await pause(500);
  }
  const waiting = r.completion.waiting();
  t.is(waiting.length, 1);
  t.like(waiting[0], { rule: 'study', per: 'study', studyInstanceUid: studyUid, instances: 9, series: 3, modalities: ['CT', 'SR'] });
  t.truthy(r.actor.getSnapshot().children[`completion:study:${studyUid}`], 'the group machine is in the actor tree');
  t.true(r.completion.holds((await readPart10File(series[0][0])).sopInstanceUid), 'members of a waiting study are held');
  await eventually(t, 'the study arrives', () => readdirSync(dir).length >= 9);
  await eventually(t, 'the queue is empty', () => r.queue.depth('PACS').pending === 0);
  await pause(1000);
  const sops = await receivedSops(dir);
  t.is(sops.length, 9);
  t.is(new Set(sops).size, 9, 'no instance arrived twice');
  const group = r.completion.get(`completion:study:${studyUid}`)!;
  t.like(group, { state: 'fired', instances: 9, callingAes: ['CT1'] });
  t.like(group.fired, { reason: 'quiet', outcome: 'forwarded', forwarded: 9, times: 1 });
  t.is(r.completion.waiting().length, 0);
  await eventually(t, 'the machine leaves the tree', () => !r.actor.getSnapshot().children[`completion:study:${studyUid}`]);
});

test('the router restarted during the quiet time still forwards the study exactly once', async (t) => {
  const { dir, peer } = await pacs(t);
  const storageDir = join(tempDir(), 'data');
  const rules = studyRule('{ per: study, quietSeconds: 3 }');
  const first = await routerWith([peer], rules, { storageDir });
  const { studyUid, series } = study(tempDir());
  try {
    for (const files of series) {
      await storescu(t, first.port, files);
      await pause(300);
    }
  } finally {
    await first.stop(0);
  }
  t.is(readdirSync(dir).length, 0, 'nothing forwarded before the restart');
  const second = await routerWith([peer], rules, { storageDir });
  t.teardown(() => second.stop(0));
  t.is(second.completion.waiting().length, 1, 'the pending study survived the restart');
  await eventually(t, 'the study arrives', () => readdirSync(dir).length >= 9);
  await eventually(t, 'the queue is empty', () => second.queue.depth('PACS').pending === 0);
  await pause(1000);
  const sops = await receivedSops(dir);
  t.is(sops.length, 9);
  t.is(new Set(sops).size, 9);
  t.like(second.completion.get(`completion:study:${studyUid}`)!.fired, { times: 1, forwarded: 9 });
});

test('required series: the study fires as soon as the SR arrives, without waiting for the quiet time', async (t) => {
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const r = await routerWith([{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port }], studyRule('{ per: study, quietSeconds: 600, requiredSeries: [{ modality: SR }] }'));
  t.teardown(() => r.stop(0));
  const studyInstanceUid = newUid();
  await send(r.port, r.dir, [{ studyInstanceUid, modality: 'CT' }, { studyInstanceUid, modality: 'CT' }]);
  t.deepEqual(r.completion.waiting()[0].missingRequired, ['modality SR']);
  await send(r.port, r.dir, [{ studyInstanceUid, modality: 'SR' }]);
  await eventually(t, 'the study arrives', () => scp.stores.length === 3);
  t.like(r.completion.get(`completion:study:${studyInstanceUid}`)!.fired, { reason: 'required-series', forwarded: 3 });
});

test('the hard limit fires with a warning; later instances go on their own (afterFired: new-instances)', async (t) => {
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const { logger, lines } = capture();
  const r = await routerWith([{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port }], studyRule('{ per: series, quietSeconds: 8, maxWaitSeconds: 10 }'), { logger });
  t.teardown(() => r.stop(0));
  const studyInstanceUid = newUid();
  const seriesInstanceUid = newUid();
  const group = `completion:study:${studyInstanceUid}:${seriesInstanceUid}`;
  // Sending every ~0.2 s keeps the quiet time (8 s, far above one send even on a loaded machine) from
  // passing: only the hard limit (10 s) can end the wait.
  let sent = 0;
  while (!r.completion.get(group)?.fired) {
    await send(r.port, r.dir, [{ studyInstanceUid, seriesInstanceUid }]);
    sent++;
    await pause(200);
  }
  t.is(r.completion.get(group)!.fired!.reason, 'hard-limit');
  const warn = lines.find((l) => l.level === 40 && /hard limit/.test(l.msg));
  t.truthy(warn, 'a warning says the hard limit was reached');
  await send(r.port, r.dir, [{ studyInstanceUid, seriesInstanceUid }]);
  await eventually(t, 'every instance arrives once', () => scp.stores.length === sent + 1);
  t.truthy(lines.find((l) => /forwarded on its own/.test(l.msg)));
});

test('afterFired: resend-study sends the whole study again; ignore forwards nothing more', async (t) => {
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const { logger, lines } = capture();
  const r = await routerWith(
    [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port }],
    'rules:\n  - name: resend\n    when: { attribute: PatientID, equals: RESEND }\n    trigger: { per: study, quietSeconds: 1, afterFired: resend-study }\n    then: { forward: [PACS] }\n'
    + '  - name: ignore\n    trigger: { per: study, quietSeconds: 1, afterFired: ignore }\n    then: { forward: [PACS] }\n',
    { logger },
  );
  t.teardown(() => r.stop(0));
  const resend = newUid();
  const ignore = newUid();
  await send(r.port, r.dir, [{ studyInstanceUid: resend, patientId: 'RESEND' }, { studyInstanceUid: resend, patientId: 'RESEND' }, { studyInstanceUid: ignore }, { studyInstanceUid: ignore }]);
  await eventually(t, 'both studies arrive', () => scp.stores.length === 4);
  await send(r.port, r.dir, [{ studyInstanceUid: resend, patientId: 'RESEND' }, { studyInstanceUid: ignore }]);
  await eventually(t, 'the resent study arrives', () => scp.stores.length === 7);
  t.like(r.completion.get(`completion:resend:${resend}`), { state: 'fired', instances: 3, fired: { times: 2, forwarded: 3 } });
  t.like(r.completion.get(`completion:ignore:${ignore}`), { state: 'fired', late: 1, fired: { times: 1 } });
  t.truthy(lines.find((l) => /afterFired: ignore/.test(l.msg)));
  await pause(500);
  t.is(scp.stores.length, 7, 'the ignored instance was not forwarded');
});

test('whenComplete that does not hold: nothing is forwarded and the log says why', async (t) => {
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const { logger, lines } = capture();
  const r = await routerWith(
    [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port }],
    studyRule('{ per: study, quietSeconds: 1 }', '    whenComplete:\n      - seriesCount: { min: 2 }\n      - callingAe: { in: [MODALITY] }\n'),
    { logger },
  );
  t.teardown(() => r.stop(0));
  const studyInstanceUid = newUid();
  const two = newUid();
  const seriesInstanceUid = newUid();
  await send(r.port, r.dir, [{ studyInstanceUid, seriesInstanceUid }, { studyInstanceUid, seriesInstanceUid }]);
  await send(r.port, r.dir, [{ studyInstanceUid: two }, { studyInstanceUid: two, seriesInstanceUid: newUid() }]);
  await eventually(t, 'both fired', () => r.completion.get(`completion:study:${studyInstanceUid}`)?.state === 'fired' && r.completion.get(`completion:study:${two}`)?.state === 'fired');
  await eventually(t, 'the two-series study arrives', () => scp.stores.length === 2);
  const line = lines.find((l) => /whenComplete does not hold/.test(l.msg));
  t.truthy(line);
  t.deepEqual(line!.why, ['series count >= 2 (seen: 1 series)']);
  t.like(r.completion.get(`completion:study:${studyInstanceUid}`)!.fired, { outcome: 'conditions-not-met', forwarded: 0 });
});

test('retention keeps the instances of a waiting study', async (t) => {
  const r = await routerWith([{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: 1 }], studyRule('{ per: study, quietSeconds: 600 }'));
  t.teardown(() => r.stop(0));
  const studyInstanceUid = newUid();
  const [sop] = await send(r.port, r.dir, [{ studyInstanceUid }]);
  t.true(r.completion.holds(sop));
  const result = await sweepSpool(r.spool, r.queue, 0, silent, Date.now() + 1e9, r.completion);
  t.is(result.removed, 0);
  t.truthy(r.spool.get(sop));
});

test('the inspector lists the waiting study with its countdown, and its machine in the tree', async (t) => {
  const { dir, router, server } = await inspectedRouter(t, {
    rules: studyRule('{ per: study, quietSeconds: 600, requiredSeries: [{ modality: SR }] }'),
    peers: [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: 1 }],
  });
  const studyInstanceUid = newUid();
  await send(router.ports.get('main')!, dir, [{ studyInstanceUid, modality: 'CT', patientName: 'SECRET^NAME' }, { studyInstanceUid, modality: 'CT' }]);
  const list: any = await (await fetch(`${server.url}/api/completions`)).json();
  t.is(list.length, 1);
  t.like(list[0], { rule: 'study', studyInstanceUid, instances: 2, series: 2, missingRequired: ['modality SR'] });
  t.true(list[0].secondsLeft > 500 && list[0].secondsLeft <= 600);
  t.false(JSON.stringify(list).includes('SECRET'), 'no PHI');
  const tree: any = await (await fetch(`${server.url}/api/actors`)).json();
  const node = tree.children.find((n: { id: string }) => n.id === `completion:study:${studyInstanceUid}`);
  t.truthy(node, 'the group machine is a child of the root');
  t.is(node.machine, 'completion');
  t.is(node.extra.firesAt, list[0].firesAt);
  t.true((await (await fetch(server.url)).text()).includes('/api/completions'));
});
