// Per-peer duplicates policy (issue 8) against real DCMTK: storescu → router (in-process) → three
// storescp peers with the policies never, if-changed and always. storescp runs with +uf (a new file per
// reception), so its folder counts what each peer received.
import test from 'ava';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { ConfigError, parseConfig } from '../../../config/config.ts';
import { SOP, TS, writeDataset } from '../../helpers/dicom-files.ts';
import { eventually, routerWith } from '../../helpers/in-process-router.ts';
import { run, startStorescp, tempDir } from '../../helpers/processes.ts';

const RETRY = { attempts: 20, initialBackoffSeconds: 0.1, maxBackoffSeconds: 0.5, jitter: 0 };
const POLICIES = { NEVER_PACS: 'never', CHANGED_PACS: 'if-changed', ALWAYS_PACS: 'always' } as const;

const received = (dir: string) => readdirSync(dir).filter((f) => !f.startsWith('.'));

const storescu = (port: number, files: string[]) => run('storescu', ['-aet', 'MODALITY', '-aec', 'DICOM_ROUTER', '-xe', '127.0.0.1', String(port), ...files]);

/** Log lines as objects (pino JSON), to assert on what the router says. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

test('re-sent instances: a never peer gets nothing again, if-changed only the modified one, always all of them', async (t) => {
  const src = tempDir();
  const files = writeDataset(join(src, 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, modality: 'CT' });
  const scps = new Map<string, { dir: string; port: number }>();
  for (const name of Object.keys(POLICIES)) {
    const dir = tempDir();
    const scp = await startStorescp(dir, { aeTitle: name, extraArgs: ['+uf'] });
    t.teardown(scp.stop);
    scps.set(name, { dir, port: scp.port });
  }
  const { logger, lines } = capturingLogger();
  const r = await routerWith(
    Object.entries(POLICIES).map(([name, duplicates]) => ({ aeTitle: name, host: '127.0.0.1', port: scps.get(name)!.port, retry: RETRY, duplicates })),
    'rules:\n  - name: ct-everywhere\n    when: { attribute: Modality, equals: CT }\n    then: { forward: [NEVER_PACS, CHANGED_PACS, ALWAYS_PACS] }\n',
    { logger },
  );
  t.teardown(() => r.stop(0));
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  const settled = () => Object.keys(POLICIES).every((p) => r.queue.depth(p).pending === 0);
  const deliveries = (peer: string) => sops.reduce((n, sop) => n + (r.queue.deliveries(sop).find((d) => d.peer === peer)?.count ?? 0), 0);

  const first = await storescu(r.port, files);
  t.is(first.code, 0, first.stdout + first.stderr);
  await eventually(t, 'every peer has the three instances', () => settled() && Object.keys(POLICIES).every((p) => deliveries(p) === 3));
  for (const { dir } of scps.values()) t.is(received(dir).length, 3);

  // The same three files again, then the first one with another Series Description (same SOP Instance UID).
  const modified = join(src, 'modified.dcm');
  copyFileSync(files[0], modified);
  const m = await run('dcmodify', ['-nb', '-i', '(0008,103e)=RESENT WITH A CHANGE', modified]);
  t.is(m.code, 0, m.stderr);
  const second = await storescu(r.port, [...files, modified]);
  t.is(second.code, 0, second.stdout + second.stderr);
  await eventually(t, 'the always peer has all four again', () => settled() && deliveries('ALWAYS_PACS') === 7);

  t.is(received(scps.get('NEVER_PACS')!.dir).length, 3, 'never: nothing sent again');
  t.is(deliveries('NEVER_PACS'), 3);
  t.is(received(scps.get('CHANGED_PACS')!.dir).length, 4, 'if-changed: only the modified instance');
  t.is(deliveries('CHANGED_PACS'), 4);
  t.is(r.queue.deliveries(sops[0]).find((d) => d.peer === 'CHANGED_PACS')?.count, 2, 'the one sent again is the modified one');
  const atChanged = await Promise.all(received(scps.get('CHANGED_PACS')!.dir).map((f) => run('dcmdump', ['-q', '+P', '0008,103e', join(scps.get('CHANGED_PACS')!.dir, f)])));
  t.is(atChanged.filter((d) => d.stdout.includes('RESENT WITH A CHANGE')).length, 1);
  t.is(received(scps.get('ALWAYS_PACS')!.dir).length, 7, 'always: all four again');
  t.is(r.queue.depth('ALWAYS_PACS').dead, 0, 'the copy replaced while still queued was sent from the new file, not lost');

  // Recorded: four skips at the never peer, three at the if-changed peer, none at always.
  t.deepEqual(r.queue.skipped('NEVER_PACS').map((s) => s.policy), ['never', 'never', 'never', 'never']);
  t.deepEqual(new Set(r.queue.skipped('CHANGED_PACS').map((s) => s.sopInstanceUid)), new Set(sops));
  t.is(r.queue.skippedCount('ALWAYS_PACS'), 0);
  const skipLogs = lines.filter((l) => l.msg === 'duplicate not queued again');
  t.is(skipLogs.length, 7);
  t.true(skipLogs.every((l) => l.level === 30 && typeof l.sopInstanceUid === 'string' && !('patientId' in l) && !('patientName' in l)), 'logged at info, UIDs only');
});

test('a duplicate SOP Instance UID on the listener overwrites the stored copy and says so: previous copy, time, same bytes or not', async (t) => {
  const src = tempDir();
  const [file] = writeDataset(join(src, 'ct'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const { logger, lines } = capturingLogger();
  // The dataset is hashed only when some peer's policy needs it (if-changed); this one does, unused by the rules.
  const r = await routerWith([{ aeTitle: 'CHANGED_PACS', host: '127.0.0.1', port: 1, duplicates: 'if-changed' }], 'rules: []\n', { logger });
  t.teardown(() => r.stop(0));
  const sop = (await readPart10File(file)).sopInstanceUid;
  t.is((await storescu(r.port, [file])).code, 0);
  const before = r.spool.get(sop)!;
  t.regex(before.sha256 ?? '', /^[0-9a-f]{64}$/);
  t.is((await storescu(r.port, [file])).code, 0);
  const after = r.spool.get(sop)!;
  t.is(r.spool.count(), 1, 'overwritten, not kept twice');
  t.is(after.sha256, before.sha256);
  t.like(after.duplicateOf, { receivedAt: before.receivedAt, path: before.path, size: before.size, sha256: before.sha256 });
  const warned = lines.filter((l) => l.msg === 'duplicate SOP Instance UID: overwritten');
  t.is(warned.length, 1);
  t.like(warned[0], { level: 40, burst: 1, sopInstanceUid: sop, identical: true, path: after.path, previous: { receivedAt: before.receivedAt, path: before.path } });
  // A changed copy: still overwritten, and the log says the bytes differ.
  t.is((await run('dcmodify', ['-nb', '-i', '(0008,103e)=CHANGED', file])).code, 0);
  t.is((await storescu(r.port, [file])).code, 0);
  const second = lines.filter((l) => l.msg === 'duplicate SOP Instance UID: overwritten')[1];
  t.like(second, { identical: false, burst: 2 });
  t.is(second.level, 30, 'the rest of a burst at info: a resent series is one warn line, not one per instance');
  await r.stop(0);
  t.like(lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('duplicate burst ended')), { level: 30, overwritten: 2 });
});

test('no peer needs a fingerprint: the dataset is not hashed, and a duplicate is still overwritten and logged', async (t) => {
  const src = tempDir();
  const [file] = writeDataset(join(src, 'ct'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const { logger, lines } = capturingLogger();
  const r = await routerWith([{ aeTitle: 'NEVER_PACS', host: '127.0.0.1', port: 1, duplicates: 'never' }], 'rules: []\n', { logger });
  t.teardown(() => r.stop(0));
  const sop = (await readPart10File(file)).sopInstanceUid;
  t.is((await storescu(r.port, [file])).code, 0);
  t.is(r.spool.get(sop)!.sha256, undefined);
  t.is((await storescu(r.port, [file])).code, 0);
  t.is(r.spool.count(), 1);
  t.like(lines.find((l) => l.msg === 'duplicate SOP Instance UID: overwritten'), { identical: undefined });
});

test('config: peers[].duplicates is always by default, never or if-changed when set, anything else is refused where it is written', (t) => {
  const yaml = (duplicates?: string) =>
    `storage: { dir: ./data }\nlisteners: [{ name: main, aeTitles: [ROUTER] }]\npeers:\n  - aeTitle: PACS\n    host: 127.0.0.1\n    port: 104\n${duplicates ? `    duplicates: ${duplicates}\n` : ''}`;
  t.is(parseConfig(yaml(), '/tmp/router.yaml').peers[0].duplicates, 'always');
  t.is(parseConfig(yaml('never'), '/tmp/router.yaml').peers[0].duplicates, 'never');
  t.is(parseConfig(yaml('if-changed'), '/tmp/router.yaml').peers[0].duplicates, 'if-changed');
  const err = t.throws(() => parseConfig(yaml('sometimes'), '/tmp/router.yaml'), { instanceOf: ConfigError });
  t.like(err?.problems[0], { line: 7, path: 'peers[0].duplicates' });
  t.regex(err?.message ?? '', /always|never|if-changed/);
});
