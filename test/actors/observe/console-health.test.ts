// The console's health and alerts from the running router: a TLS certificate expiring within 30 days
// is listed with its days left and raises the certificate alert; rules in force are listed; a dead
// letter with its status and Error Comment; patient data masked unless showPhi.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MASK } from '../../../actors/observe/inspector-model.ts';
import type { AlertCondition } from '../../../actors/observe/alerts.ts';
import { ConsoleModel } from '../../../actors/observe/console-model.ts';
import { alertConditions } from '../../../actors/observe/console-view.ts';
import { realJournalIo } from '../../../actors/ingest/journal-segments.ts';
import { send, storeFile } from '../../helpers/in-process-router.ts';
import { makeInstance, SOP, TS } from '../../helpers/dicom-files.ts';
import { initLabCerts, LAB_FILES } from '../../../scripts/certs.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';
import { tempDir } from '../../helpers/processes.ts';

test('a listener certificate expiring in 10 days: health lists it, the alert is raised and is a gauge', async (t) => {
  const certs = join(tempDir(), 'certs');
  initLabCerts(certs, { days: 10 });
  const { json, get } = await inspectedRouter(t, {
    rules: 'rules:\n  - name: keep\n    then: { drop: true }\n',
    listener: { tls: { key: join(certs, LAB_FILES.server.key), cert: join(certs, LAB_FILES.server.cert), ca: join(certs, LAB_FILES.ca.cert) } },
  });
  const view = await json('/api/console');
  const server = view.health.certificates.find((c: { role: string }) => c.role === 'certificate');
  t.truthy(server, JSON.stringify(view.health.certificates));
  t.true(server.daysLeft >= 9 && server.daysLeft <= 10, String(server.daysLeft));
  const alert = view.alerts.find((a: { kind: string }) => a.kind === 'certificate-expiring');
  t.truthy(alert, JSON.stringify(view.alerts));
  t.regex(alert.message, /expires in (9|10) days/);
  t.deepEqual(view.health.rules.inForce.map((r: { name: string }) => r.name), ['keep']);
  t.is(view.health.rules.refused, null);
  t.regex(await (await get('/metrics')).text(), /dicom_router_alert\{kind="certificate-expiring",subject="[^"]+"\} 1/);
});

test('a dead letter: listed with its status and Error Comment, the alert starts; purged, the alert ends', async (t) => {
  const { router, json, server } = await inspectedRouter(t, { peers: [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: 1 }] });
  const item = await router.queue.add({
    peer: 'PACS', rule: 'r', modifications: [], sopInstanceUid: '1.2.3.4', seriesInstanceUid: '1.2.3', studyInstanceUid: '1.2',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUid: '1.2.840.10008.1.2.1', path: 'instances/1.2/1.2.3/1.2.3.4.dcm',
  });
  // As the forwarder does: the failure recorded in the queue, then its domain event.
  const error = '0xA700 Out of resources: disk full at PACS';
  const dead = await router.queue.failed((item as { id: string }).id, { status: 0xa700, error, retryable: false, policy: { attempts: 5, initialBackoffMs: 1000, maxBackoffMs: 1000, jitter: 0 } });
  router.events.emit({ type: 'forward-failed', peer: 'PACS', sopInstanceUid: '1.2.3.4', studyInstanceUid: '1.2', outcome: 'dead', error, status: 0xa700, attempts: dead!.attempts });
  const view = await json('/api/console');
  const pacs = view.peers.find((p: { name: string }) => p.name === 'PACS');
  t.is(pacs.queue.dead, 1);
  t.like(pacs.deadLetters[0], { sopInstanceUid: '1.2.3.4', attempts: 1, status: '0xA700 Out of Resources' });
  t.regex(pacs.deadLetters[0].reason, /disk full at PACS/);
  t.like(view.alerts.find((a: { kind: string }) => a.kind === 'dead-letters'), { subject: 'PACS', message: 'PACS: 1 dead letter' });
  // Purged through the API (the console's button): the alert ends at the next evaluation.
  t.is((await fetch(`${server.url}/api/queues/PACS/purge`, { method: 'POST' })).status, 200);
  const alerts = await json('/api/alerts');
  t.false(alerts.some((a: { kind: string }) => a.kind === 'dead-letters'));
});

test('recent studies: patient name and ID masked by default, shown with inspect.showPhi', async (t) => {
  for (const showPhi of [false, true]) {
    const { dir, port, json } = await inspectedRouter(t, { inspect: { showPhi } });
    mkdirSync(join(dir, 'in'));
    await send(port, join(dir, 'in'), [{ patientName: 'DOE^JANE', patientId: 'PID-4711', modality: 'CT' }]);
    let view: any;
    for (let i = 0; i < 100 && !(view?.studies.length > 0); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      view = await json('/api/console');
    }
    t.deepEqual(view.studies[0].patient, showPhi ? { name: 'DOE^JANE', id: 'PID-4711' } : { name: MASK, id: MASK });
    t.deepEqual(view.studies[0].modalities, ['CT']);
  }
});

test('the spool disk above 80 % is an alert; at 80 % or below it is not', async (t) => {
  const { router } = await inspectedRouter(t);
  // The disk's usage is given (this machine's disk is what it is); everything else is the running router's.
  const deps = { config: { peers: [] } as never, router, model: new ConsoleModel(), associationsOpen: () => 0, deadLetters: () => 0 };
  const disk = (usedPercent: number) => ({ path: router.spool.dir, totalBytes: 100, usedBytes: usedPercent, freeBytes: 100 - usedPercent, usedPercent });
  const only = (c: AlertCondition[]) => c.filter((a) => a.kind === 'disk-full');
  t.deepEqual(only(alertConditions(deps, Date.now(), disk(80))), []);
  t.deepEqual(only(alertConditions(deps, Date.now(), disk(81.5))), [{ kind: 'disk-full', subject: router.spool.dir, message: 'spool disk 81.5 % used (above 80 %)' }]);
});

test('with a token, the page and the API need it; the charting library does not (a script tag sends no token)', async (t) => {
  const { server } = await inspectedRouter(t, { inspect: { token: 'secret-token-123' } });
  t.is((await fetch(`${server.url}/api/console`)).status, 401);
  t.is((await fetch(`${server.url}/api/console`, { headers: { authorization: 'Bearer secret-token-123' } })).status, 200);
  const lib = await fetch(`${server.url}/vendor/uPlot.iife.min.js`);
  t.is(lib.status, 200);
  t.regex(lib.headers.get('content-type') ?? '', /javascript/);
  t.regex(await lib.text(), /uPlot/);
  t.is((await fetch(`${server.url}/vendor/uPlot.min.css`)).status, 200);
});

test('a journal that cannot be flushed stops ingest: C-STORE answered A700, /readyz 503 with the reason, the ingest-stopped alert', async (t) => {
  let failing = false;
  const { dir, port, json, get, router } = await inspectedRouter(t, {
    storage: { fsync: true },
    // The disk answers EIO to the journal's fdatasync once `failing`: the kernel may have dropped the pages.
    journalIo: { datasync: async (fd) => (failing ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : realJournalIo.datasync(fd)) },
  });
  mkdirSync(join(dir, 'in'));
  const [first] = await send(port, join(dir, 'in'), [{ modality: 'CT' }]);
  t.truthy(router.spool.get(first));
  t.is((await get('/readyz')).status, 200);
  t.false((await json('/api/alerts')).some((a: AlertCondition) => a.kind === 'ingest-stopped'));

  failing = true;
  const file = join(dir, 'in', 'second.dcm');
  writeFileSync(file, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE }));
  const refused = await storeFile(port, file);
  t.is(refused.status, 0xa700, 'not acknowledged: the sender keeps its copy');
  // Every later C-STORE too, until a restart: the journal no longer takes commits.
  failing = false;
  t.is((await storeFile(port, file)).status, 0xa700);
  const ready = await get('/readyz');
  t.is(ready.status, 503);
  t.like(await ready.json(), { ready: false, ingestStopped: { reason: 'journal fdatasync failed: EIO: i/o error, fdatasync' } });
  const alert = (await json('/api/alerts')).find((a: AlertCondition) => a.kind === 'ingest-stopped');
  t.truthy(alert);
  t.regex(alert.message, /^ingest stopped: journal fdatasync failed: EIO.*refused \(A700\) until the router is restarted/);
  t.truthy(router.spool.get(first), 'what was acknowledged before stays');
});
