// What real peers showed (issue 12, items 3-5), pinned against them: a peer that rejects the
// association permanently (DCMTK storescp --refuse, dcmqrscp not knowing the called AE title), a peer
// answering a non-standard status (A702, Canon Virtual Place's "already held"), and a storage SCP that
// takes one association at a time (DCMTK storescp without --fork, as the SDCC SCP and Virtual Place).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SOP, TS, writeDataset } from '../helpers/dicom-files.ts';
import { startDcmqrscp } from '../helpers/dcmqrscp.ts';
import { freePort, REPO, run, startProcess, startRouter, tempDir, waitForPort } from '../helpers/processes.ts';
import type { RouterUnderTest } from '../helpers/processes.ts';
import { scriptedScp } from '../helpers/scripted-scp.ts';

const QUICK_RETRY = { attempts: 2, initialBackoffSeconds: 0.2, maxBackoffSeconds: 0.4, jitter: 0 };

async function eventually(t: ExecutionContext, what: string, check: () => boolean | Promise<boolean>, output: () => string, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for: ${what}\n--- router output ---\n${output().slice(-6000)}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function rulesDir(peers: string[]): string {
  const dir = tempDir('rules-');
  writeFileSync(join(dir, 'rules.yaml'), `rules:\n  - name: all\n    then: { forward: [${peers.join(', ')}] }\n`);
  return dir;
}

const cli = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);

type QueueLs = { peers: { peer: string; pending: number; dead: number; statusOverrides: { status: string; outcome: string; count: number }[] }[]; items: { peer: string; state: string; attempts: number; deadReason?: string; lastError?: string }[] };

async function queueLs(router: RouterUnderTest): Promise<QueueLs> {
  const r = await cli('queue', 'ls', '--json', '--config', router.configFile);
  if (r.code !== 0) throw new Error(`queue ls failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as QueueLs;
}

const files = (dir: string) => readdirSync(dir).filter((n) => !n.startsWith('.'));

const storescu = (port: number, paths: string[], calledAe = 'DICOM_ROUTER', extra: string[] = []) =>
  run('storescu', ['-aet', 'MODALITY', '-aec', calledAe, '-xe', ...extra, '127.0.0.1', String(port), ...paths]);

test('a permanent association reject (storescp --refuse) makes the due items dead letters at once, with the reason in words', async (t) => {
  const port = await freePort();
  const refusing = startProcess('storescp', ['--refuse', String(port)]);
  t.teardown(refusing.stop);
  await waitForPort(port);
  const router = await startRouter({
    peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port, retry: QUICK_RETRY }],
    rulesDir: rulesDir(['PACS']),
  });
  t.teardown(router.stop);
  const src = writeDataset(join(tempDir(), 'ct'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const sent = await storescu(router.port, src);
  t.is(sent.code, 0, sent.stderr);
  let ls: QueueLs | undefined;
  await eventually(t, 'three dead letters', async () => (ls = await queueLs(router)).items.filter((i) => i.state === 'dead').length === 3, router.output);
  for (const item of ls!.items) {
    t.is(item.state, 'dead');
    t.regex(item.deadReason ?? '', /^association rejected permanently: no reason given by PACS \(A-ASSOCIATE-RJ rejected-permanent, source 1 service-user, reason 1\)$/);
  }
  t.regex(router.output(), /"level":50[^\n]*"reason":"association rejected permanently: no reason given by PACS[^\n]*"msg":"association rejected permanently: due items are dead letters"/);
  // No reconnect loop behind the operator's back: the peer waits for new work (or `queue retry`).
  t.notRegex(router.output(), /circuit open|backing off/i);
  // The plain listing shows the reason too.
  const plain = await cli('queue', 'ls', '--config', router.configFile);
  t.regex(plain.stdout, /PACS: 0 pending, 3 dead/);
  t.regex(plain.stdout, /dead {4}attempts 1 .*association rejected permanently: no reason given by PACS/);
});

test('a peer that does not know the called AE title (dcmqrscp) gets dead letters that say so, and queue retry sends them once it is fixed', async (t) => {
  const ws = await startDcmqrscp({ aeTitle: 'WS' });
  t.teardown(ws.stop);
  const router = await startRouter({
    peers: [{ name: 'WS', aeTitle: 'WRONG_AE', host: '127.0.0.1', port: ws.port, retry: QUICK_RETRY }],
    rulesDir: rulesDir(['WS']),
  });
  const src = writeDataset(join(tempDir(), 'ct'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  t.is((await storescu(router.port, src)).code, 0);
  let ls: QueueLs | undefined;
  await eventually(t, 'two dead letters', async () => (ls = await queueLs(router)).items.filter((i) => i.state === 'dead').length === 2, router.output);
  t.regex(ls!.items[0].deadReason ?? '', /called AE title not recognized by WRONG_AE \(A-ASSOCIATE-RJ rejected-permanent, source 1 service-user, reason 7\)/);
  await router.stop();
  // The integrator fixes the AE title, puts the dead letters back with `queue retry`, and restarts.
  const retried = await cli('queue', 'retry', 'WS', '--config', router.configFile);
  t.is(retried.code, 0, retried.stderr);
  const fixed = await startRouter({
    dataDir: router.dataDir,
    peers: [{ name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: ws.port, retry: QUICK_RETRY }],
    rulesDir: rulesDir(['WS']),
  });
  t.teardown(fixed.stop);
  await eventually(t, 'the workstation holds both', () => ws.files().length === 2, fixed.output);
  await eventually(t, 'the queue is empty', async () => (await queueLs(fixed)).items.length === 0, fixed.output);
});

test('statusOverrides: A702 from a Virtual Place-like SCP counts as delivered (recorded and listed); without it the item is retried, then dead', async (t) => {
  const scp = await scriptedScp({ status: () => 0xa702 });
  t.teardown(scp.close);
  const router = await startRouter({
    peers: [
      { name: 'VP', aeTitle: 'VP', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY, statusOverrides: { A702: 'delivered' } },
      { name: 'VP_PLAIN', aeTitle: 'VP', host: '127.0.0.1', port: scp.port, retry: QUICK_RETRY },
    ],
    rulesDir: rulesDir(['VP', 'VP_PLAIN']),
  });
  t.teardown(router.stop);
  const src = writeDataset(join(tempDir(), 'ct'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  t.is((await storescu(router.port, src)).code, 0);
  let ls: QueueLs | undefined;
  await eventually(t, 'VP delivered both, VP_PLAIN dead-lettered both', async () => {
    ls = await queueLs(router);
    return ls.items.every((i) => i.peer === 'VP_PLAIN' && i.state === 'dead') && ls.items.length === 2;
  }, router.output);
  const vp = ls!.peers.find((p) => p.peer === 'VP')!;
  t.like(vp, { pending: 0, dead: 0 });
  t.deepEqual(vp.statusOverrides.map(({ status, outcome, count }) => ({ status, outcome, count })), [{ status: 'A702', outcome: 'delivered', count: 2 }]);
  for (const item of ls!.items) {
    t.is(item.attempts, 2, 'A7xx is retried by the standard reading');
    t.regex(item.deadReason ?? '', /gave up after 2 attempts: 0xA702 /);
  }
  t.is(scp.stores.length, 2 + 2 * 2, 'VP once per instance, VP_PLAIN twice');
  t.regex(router.output(), /"statusOverride":"A702 → delivered"[^\n]*"msg":"delivered \(status override\)"/);
  const plain = await cli('queue', 'ls', 'VP', '--config', router.configFile);
  t.regex(plain.stdout, /status A702 read as delivered \(statusOverrides\): 2 times/);
});

test('a one-association storescp behind the router: two modalities through the router and a third sending directly all get through', async (t) => {
  const out = tempDir();
  // storescp without --fork serves one association at a time; its ACSE timeout bounds the direct sender's wait.
  const port = await freePort();
  const scp = startProcess('storescp', ['--aetitle', 'SDCC', '+xa', '--output-directory', out, String(port)]);
  t.teardown(scp.stop);
  await waitForPort(port);
  const router = await startRouter({
    peers: [{ aeTitle: 'SDCC', host: '127.0.0.1', port, exclusive: true, retry: { attempts: 50, initialBackoffSeconds: 0.2, maxBackoffSeconds: 1, jitter: 0 } }],
    rulesDir: rulesDir(['SDCC']),
  });
  t.teardown(router.stop);
  const a = writeDataset(join(tempDir(), 'a'), { count: 5, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const b = writeDataset(join(tempDir(), 'b'), { count: 5, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE });
  const direct = writeDataset(join(tempDir(), 'c'), { count: 3, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const [ra, rb] = await Promise.all([storescu(router.port, a), storescu(router.port, b)]);
  t.is(ra.code, 0, ra.stderr);
  t.is(rb.code, 0, rb.stderr);
  await eventually(t, 'the SCP holds both modalities’ instances', () => files(out).length === 10, router.output);
  // The router released its association as soon as the batch was sent: a direct sender is served
  // within its 10 s ACSE/DIMSE timeouts (the old 30 s idle hold made it fail with a network read timeout).
  const d = await storescu(port, direct, 'SDCC', ['-ta', '10', '-td', '10']);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.is(files(out).length, 13);
  t.regex(router.output(), /"msg":"association to peer established"/);
});

test('default peers release an idle association after 2 s, so a one-association SCP is free for others', async (t) => {
  const out = tempDir();
  const port = await freePort();
  const scp = startProcess('storescp', ['--aetitle', 'PACS', '+xa', '--output-directory', out, String(port)]);
  t.teardown(scp.stop);
  await waitForPort(port);
  const router = await startRouter({ peers: [{ aeTitle: 'PACS', host: '127.0.0.1', port }], rulesDir: rulesDir(['PACS']) });
  t.teardown(router.stop);
  const a = writeDataset(join(tempDir(), 'a'), { count: 2, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  t.is((await storescu(router.port, a)).code, 0);
  await eventually(t, 'forwarded', () => files(out).length === 2, router.output);
  const direct = writeDataset(join(tempDir(), 'c'), { count: 1, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE });
  const d = await storescu(port, direct, 'PACS', ['-ta', '15', '-td', '15']);
  t.is(d.code, 0, d.stdout + d.stderr);
  t.is(files(out).length, 3);
});
