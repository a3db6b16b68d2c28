// `router rules check|explain` and `router queue ls|retry|purge` as an integrator runs them.
import test from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CommitmentScuStore } from '../../actors/jobs/commitment-scu-store.ts';
import { CommitmentStore } from '../../actors/jobs/commitment-store.ts';
import { Spool } from '../../actors/ingest/spool.ts';
import { makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import { silent } from '../helpers/in-process-router.ts';
import { freePort, REPO, run, startRouter, startStorescp, tempDir, waitForOutput } from '../helpers/processes.ts';

const router = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);

function setup(rules: string, peers: Record<string, unknown>[] = [{ aeTitle: 'PACS', host: '127.0.0.1', port: 1 }]) {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(join(rulesDir, 'main.yaml'), rules);
  const config = join(dir, 'router.yaml');
  writeFileSync(config, stringify({ storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }], peers, routing: { rulesDir } }));
  return { dir, rulesDir, config };
}

test('rules check: OK with a count, or exit 2 with file:line:column and what was expected', async (t) => {
  const ok = setup('rules:\n  - name: ct\n    when: { attribute: Modality, equals: CT }\n    then: { forward: [PACS] }\n');
  const good = await router('rules', 'check', '--config', ok.config);
  t.is(good.code, 0, good.stderr);
  t.regex(good.stdout, /^1 rule in 1 file: OK/);
  const bad = setup('rules:\n  - name: ct\n    then: { forward: [PACZ] }\n');
  const r = await router('rules', 'check', '--config', bad.config);
  t.is(r.code, 2);
  t.regex(r.stderr, /main\.yaml:3:\d+: .*PACZ/);
});

test('rules explain: which rules match, which conditions failed and why, what would go where', async (t) => {
  const s = setup(`rules:
  - name: mr-only
    when: { attribute: Modality, equals: MR }
    then: { forward: [PACS] }
  - name: ct-from-scanner
    when:
      - callingAe: CT_SCANNER
      - attribute: Modality
        equals: CT
    then:
      forward: [PACS]
      modify:
        - set: { attribute: InstitutionName, value: General Hospital }
`);
  const file = join(s.dir, 'ct.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, modality: 'CT' }));
  const r = await router('rules', 'explain', file, '--config', s.config, '--calling-ae', 'CT_SCANNER');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /mr-only/);
  t.regex(r.stdout, /MR/);
  t.regex(r.stdout, /ct-from-scanner/);
  t.regex(r.stdout, /PACS/);
  t.regex(r.stdout, /InstitutionName/);
  const other = await router('rules', 'explain', file, '--config', s.config, '--calling-ae', 'ELSEWHERE');
  t.regex(other.stdout, /CT_SCANNER/);
  t.notRegex(other.stdout.split('\n').filter((l) => /forward|send/i.test(l)).join('\n'), /ct-from-scanner.*PACS/);
});

test('queue ls shows what waits for an unreachable peer; retry and purge act on it', async (t) => {
  const s = setup('rules:\n  - name: all\n    then: { forward: [PACS] }\n');
  // A router whose only peer is unreachable: what it receives stays queued.
  const running = await startRouter({
    dataDir: join(s.dir, 'data'),
    rulesDir: s.rulesDir,
    peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port: 1, retry: { attempts: 1, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.05, jitter: 0 } }],
  });
  const file = join(s.dir, 'ct.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE }));
  const sent = await router('send', `DICOM_ROUTER@127.0.0.1:${running.port}`, file);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  await running.stop();
  const ls = await router('queue', 'ls', '--config', running.configFile);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /PACS: 1 pending, 0 dead|PACS: 0 pending, 1 dead/);
  const listed = JSON.parse((await router('queue', 'ls', '--json', '--config', running.configFile)).stdout) as { peers: { peer: string; duplicates: string }[]; items: { id: string }[]; skipped: unknown[] };
  t.like(listed.peers[0], { peer: 'PACS', duplicates: 'always', skipped: 0 });
  t.deepEqual(listed.skipped, []);
  const json = listed.items;
  t.is(json.length, 1);
  const retried = await router('queue', 'retry', 'PACS', '--config', running.configFile);
  t.regex(retried.stdout, /^1 item due now$/m);
  const refused = await router('queue', 'purge', 'PACS', '--config', running.configFile);
  t.not(refused.code, 0, 'purge without --yes and without a terminal is refused');
  t.regex(refused.stderr, /--yes/);
  const purged = await router('queue', 'purge', json[0].id, '--yes', '--config', running.configFile);
  t.regex(purged.stdout, /^1 item purged$/m);
  t.regex((await router('queue', 'ls', '--config', running.configFile)).stdout, /^$|PACS: 0 pending, 0 dead/m);
});

test('queue retry wakes the running router: a peer whose circuit is open is tried at once, not after the circuit\'s minute', async (t) => {
  const s = setup('rules:\n  - name: all\n    then: { forward: [PACS] }\n');
  // Nothing listens on the peer's port yet: five quick failures open the circuit (for 60 s).
  const peerPort = await freePort();
  const running = await startRouter({
    dataDir: join(s.dir, 'data'),
    rulesDir: s.rulesDir,
    inspect: {},
    peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port: peerPort, retry: { attempts: 1000, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.05, jitter: 0 } }],
  });
  t.teardown(() => running.stop());
  const file = join(s.dir, 'ct.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE }));
  const sent = await router('send', `DICOM_ROUTER@127.0.0.1:${running.port}`, file);
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  await waitForOutput(running, 'circuit open: no attempts to this peer');
  // The peer comes back; only the operator's retry (or the circuit's end, a minute away) makes the router try.
  const received = join(s.dir, 'received');
  mkdirSync(received);
  const pacs = await startStorescp(received, { aeTitle: 'PACS', port: peerPort });
  t.teardown(() => pacs.stop());
  const retried = await router('queue', 'retry', 'PACS', '--config', running.configFile);
  t.is(retried.code, 0, retried.stderr);
  t.regex(retried.stdout, /^1 item due now$/m);
  t.regex(retried.stdout, /^PACS: the running router tries it now$/m);
  await waitForOutput(running, '"msg":"delivered"', 40_000);
  t.is(readdirSync(received).length, 1, running.output());
});

test('queue ls shows each peer\'s duplicates policy and the duplicates it skipped (count, recent ones, all with --all, in --json)', async (t) => {
  const s = setup('rules:\n  - name: all\n    then: { forward: [PACS] }\n');
  // The peer is unreachable, so the first copy stays queued; a `never` peer does not queue the next copies.
  const running = await startRouter({
    dataDir: join(s.dir, 'data'),
    rulesDir: s.rulesDir,
    peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port: 1, duplicates: 'never', retry: { attempts: 1000, initialBackoffSeconds: 60, maxBackoffSeconds: 60, jitter: 0 } }],
  });
  const file = join(s.dir, 'ct.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE }));
  const sent = await router('send', `DICOM_ROUTER@127.0.0.1:${running.port}`, ...Array<string>(12).fill(file));
  t.is(sent.code, 0, sent.stdout + sent.stderr);
  await running.stop();
  t.regex(running.output(), /"msg":"duplicate not queued again"/);
  const ls = await router('queue', 'ls', '--config', running.configFile);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /^PACS: 1 pending, 0 dead, 11 duplicates skipped \(duplicates: never\)$/m);
  t.is(ls.stdout.match(/ skipped \S+ +[\d.]+ +rule all: already queued as PACS:\d+/g)?.length, 10, 'the ten most recent');
  t.regex(ls.stdout, /1 older skipped duplicates: --all lists them/);
  const all = await router('queue', 'ls', '--all', '--config', running.configFile);
  t.is(all.stdout.match(/^ {2}\S+ {2}skipped /gm)?.length, 11);
  const json = JSON.parse((await router('queue', 'ls', '--json', '--config', running.configFile)).stdout) as { peers: unknown[]; items: unknown[]; skipped: { policy: string; why: string }[] };
  t.like(json.peers, [{ peer: 'PACS', duplicates: 'never', pending: 1, dead: 0, skipped: 11 }]);
  t.is(json.items.length, 1);
  t.is(json.skipped.length, 11);
  t.like(json.skipped[0], { policy: 'never', rule: 'all', skipped: true });
});

test('queue ls lists storage commitment requests still open: received (waiting for their instances) and asked of destinations', async (t) => {
  const s = setup('rules:\n  - name: all\n    then: { forward: [PACS] }\n', [{ aeTitle: 'PACS', host: '127.0.0.1', port: 1 }, { aeTitle: 'MODALITY', host: '127.0.0.1', port: 2 }]);
  const spool = await Spool.open({ dir: join(s.dir, 'data'), logger: silent });
  const ref = { sopClassUid: SOP.ct, sopInstanceUid: '1.2.3.4.5' };
  await new CommitmentStore(spool).add({
    transactionUid: '1.2.3.100', listener: 'main', callingAeTitle: 'MODALITY', calledAeTitle: 'DICOM_ROUTER', peer: 'MODALITY', commitWhen: 'delivered',
    report: 'same-association-first', referenced: [ref], receivedAt: '2026-12-07T10:00:00.000Z', deadline: '2026-12-08T10:00:00.000Z', state: 'waiting',
    waitingFor: { [ref.sopInstanceUid]: 'delivery to PACS' }, reportAttempts: 0,
  }, (r) => r);
  await new CommitmentScuStore(spool).write([
    { transactionUid: '2.25.77', peer: 'PACS', referenced: [ref], state: 'requested', createdAt: '2026-12-07T10:01:00.000Z', requestedAt: '2026-12-07T10:01:01.000Z' },
    { transactionUid: '2.25.78', peer: 'PACS', referenced: [ref], state: 'done', createdAt: '2026-12-07T09:00:00.000Z', committed: 1, failed: 0 },
  ], []);
  await spool.close();
  const ls = await router('queue', 'ls', '--config', s.config);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /^storage commitment reports not yet acknowledged: 1$/m);
  t.regex(ls.stdout, /^ {2}1\.2\.3\.100 {2}from MODALITY {2}waiting \(delivered\) for 1 of 1 instances until 2026-12-08T10:00:00\.000Z$/m);
  t.regex(ls.stdout, /^storage commitment asked of destinations, not yet reported: 1$/m, 'the decided one is not listed');
  t.regex(ls.stdout, /^ {2}2\.25\.77 {2}to PACS {2}requested 1 instance since 2026-12-07T10:01:01\.000Z$/m);
  const json = JSON.parse((await router('queue', 'ls', '--json', '--config', s.config)).stdout) as { commitments: { id: string }[]; sentCommitments: { transactionUid: string; state: string }[] };
  t.deepEqual(json.commitments.map((c) => c.id), ['1.2.3.100']);
  t.deepEqual(json.sentCommitments.map((r) => [r.transactionUid, r.state]), [['2.25.77', 'requested']]);
});

test('queue ls on a cluster node whose PostgreSQL is down: its own queue, and a line saying the cluster queue could not be read', async (t) => {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  const config = join(dir, 'router.yaml');
  const down = await freePort(); // nothing listens there
  writeFileSync(config, stringify({
    storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }], peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port: 1 }], routing: { rulesDir },
    cluster: { nodeName: 'n1', postgres: { url: `postgres://router@127.0.0.1:${down}/router` }, storage: 'local', leaseSeconds: 30 },
  }));
  await (await Spool.open({ dir: join(dir, 'data'), logger: silent })).close();
  const ls = await router('queue', 'ls', '--config', config);
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /^PACS: 0 pending, 0 dead \(duplicates: always\)$/m);
  t.regex(ls.stdout, /^cluster queue \(PostgreSQL\): not reachable \(.*ECONNREFUSED.*\); above is this node's own queue only$/m);
  const json = JSON.parse((await router('queue', 'ls', '--json', '--config', config)).stdout) as { cluster: { unreachable: string } };
  t.regex(json.cluster.unreachable, /ECONNREFUSED/);
});
