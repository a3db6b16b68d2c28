// The inspector server in-process: JSON API, Prometheus metrics, health and the token, after DCMTK
// storescu sends N instances (issue 6 "API and metrics").
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { MASK, sanitize } from '../../../actors/observe/inspector-model.ts';
import { treeText } from '../../../scripts/inspect-cli.ts';
import { parseConfig } from '../../../config/config.ts';
import { SOP, TS, writeDataset } from '../../helpers/dicom-files.ts';
import { eventually } from '../../helpers/in-process-router.ts';
import { freePort, run } from '../../helpers/processes.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';

const N = 5;
const TOKEN = 'a-test-token-of-some-length';

async function inspected(t: ExecutionContext, inspect: Record<string, unknown> = {}) {
  const downPort = await freePort(); // nothing listens: items stay queued
  return inspectedRouter(t, {
    rules: 'rules:\n  - name: everything-to-down\n    then:\n      forward: [DOWN]\n',
    peers: [{ name: 'DOWN', aeTitle: 'DOWN', host: '127.0.0.1', port: downPort, timeouts: { connectSeconds: 1, dimseSeconds: 5 } }],
    inspect,
  });
}

test('after storescu sends N instances: counters and queue depth read N, the association list is empty again', async (t) => {
  const r = await inspected(t);
  const files = writeDataset(join(r.dir, 'in'), { count: N, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 2048, patientName: 'DOE^JANE' });
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '-aet', 'CT1', '127.0.0.1', String(r.port), ...files]);
  t.is(sent.code, 0, sent.stderr);
  // A wrong called AE title: one rejection, with its reason.
  const rejected = await run('echoscu', ['-aec', 'NOT_US', '127.0.0.1', String(r.port)]);
  t.not(rejected.code, 0);

  await eventually(t, 'no open association', () => {
    const listener = r.router.actor.getSnapshot().children['listener:main']?.getSnapshot().context as { active?: string[] } | undefined;
    return listener?.active?.length === 0;
  });
  const associations = await r.json('/api/associations');
  t.deepEqual(associations, []);

  const metrics = await (await r.get('/metrics')).text();
  const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1]);
  t.is(value('dicom_router_instances_received_total{listener="main"}'), N, metrics);
  t.is(value('dicom_router_associations_accepted_total{listener="main"}'), 1);
  t.true(/^dicom_router_associations_rejected_total\{listener="main",reason="[^"]*"\} 1$/m.test(metrics), metrics);
  t.is(value('dicom_router_queue_depth{peer="DOWN"}'), N);
  t.is(value('dicom_router_dead_letters{peer="DOWN"}'), 0);
  t.is(value('dicom_router_dimse_duration_seconds_count{service="C-STORE"}'), N);
  t.is(value('dicom_router_associations_active{listener="main"}'), 0);
  t.true(value('dicom_router_bytes_received_total{listener="main"}') > N * 2048);
  t.true(value('dicom_router_bytes_sent_total{listener="main"}') > 0);

  const queues = await r.json('/api/queues');
  t.is(queues[0].peer, 'DOWN');
  t.is(queues[0].pending, N);
  t.is(queues[0].items.length, N);
  const peers = await r.json('/api/peers');
  t.is(peers[0].name, 'DOWN');
  t.is(peers[0].queue.pending, N);
  t.is(peers[0].slots[0].slot, 'DOWN');
  const rules = await r.json('/api/rules');
  t.deepEqual(rules.rules.map((x: { name: string }) => x.name), ['everything-to-down']);
  t.is(rules.lastError, null);
  t.deepEqual(await r.json('/api/prefetch'), []);

  // The tree: router > listener, peer; one actor in detail, with its diagram.
  const tree = await r.json('/api/actors');
  t.is(tree.id, 'router');
  t.true(tree.children.some((c: { id: string; state: string[] }) => c.id === 'listener:main' && c.state[0] === 'listening'));
  t.regex(treeText(tree).join('\n'), /^ {2}listener:main \(listener\) \[listening\]/m);
  const listener = tree.children.find((c: { id: string }) => c.id === 'listener:main');
  const detail = await r.json(`/api/actors/${encodeURIComponent(listener.sessionId)}`);
  t.is(detail.context.accepted, 1);
  t.true(detail.diagram.active.includes('listening'));
  t.true(detail.diagram.states.some((s: { path: string }) => s.path === 'draining'));
  t.true(detail.events.some((e: { type: string }) => e.type === 'CONNECTION_ACCEPTED'));
  // Nothing patient-identifying in anything the inspector serves by default.
  t.false(JSON.stringify([tree, detail, queues]).includes('DOE^JANE'));

  // Operations: retry makes the items due again, purge removes them.
  t.deepEqual(await (await fetch(`${r.server.url}/api/queues/DOWN/retry`, { method: 'POST' })).json(), { peer: 'DOWN', retried: N });
  t.deepEqual(await (await fetch(`${r.server.url}/api/queues/DOWN/purge`, { method: 'POST' })).json(), { peer: 'DOWN', purged: N });
  t.is((await fetch(`${r.server.url}/api/queues/NOPE/purge`, { method: 'POST' })).status, 404);
  const after = await (await r.get('/metrics')).text();
  t.regex(after, /^dicom_router_queue_depth\{peer="DOWN"\} 0$/m);
});

test('healthz and readyz; readiness ends when shutting down', async (t) => {
  const r = await inspected(t);
  t.deepEqual(await r.json('/healthz'), { status: 'up' });
  const ready = await r.get('/readyz');
  t.is(ready.status, 200);
  const body = (await ready.json()) as { ready: boolean; spoolWritable: boolean; lmdbOpen: boolean; listeners: unknown };
  t.true(body.ready && body.spoolWritable && body.lmdbOpen);
  t.deepEqual(body.listeners, [{ name: 'main', state: 'listening' }]);
  r.inspection.setShuttingDown();
  const notReady = await r.get('/readyz');
  t.is(notReady.status, 503);
  t.true(((await notReady.json()) as { shuttingDown: boolean }).shuttingDown);
});

test('with a token, requests without it get 401 (health excepted); with it, 200', async (t) => {
  const r = await inspected(t, { token: TOKEN });
  for (const path of ['/', '/api/actors', '/metrics', '/api/queues']) {
    const res = await r.get(path);
    t.is(res.status, 401, path);
    t.is(res.headers.get('www-authenticate'), 'Bearer realm="dicom-router inspector"');
  }
  t.is((await r.get('/api/actors', { authorization: 'Bearer wrong-token-of-same-len' })).status, 401);
  t.is((await fetch(`${r.server.url}/api/queues/DOWN/purge`, { method: 'POST' })).status, 401);
  t.is((await r.get('/api/actors', { authorization: `Bearer ${TOKEN}` })).status, 200);
  t.is((await r.get(`/metrics?token=${TOKEN}`)).status, 200);
  t.is((await r.get('/healthz')).status, 200);
  t.is((await r.get('/readyz')).status, 200);
  // The WebSocket too.
  const ws = await fetch(`${r.server.url}/ws`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } }).catch((e: Error) => e);
  t.true(ws instanceof Error || ws.status === 401);
});

test('a non-loopback inspector bind without a token is refused at config load', (t) => {
  const text = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\ninspect:\n  enabled: true\n  bind: 0.0.0.0\n';
  const err = t.throws(() => parseConfig(text, 'router.yaml'));
  t.regex(err!.message, /^router\.yaml:7:9: inspect\.bind: binding the inspector to a non-loopback address needs inspect\.token/m);
  t.notThrows(() => parseConfig(`${text}  token: ${TOKEN}\n`, 'router.yaml'));
  t.notThrows(() => parseConfig(text.replace('0.0.0.0', '::1'), 'router.yaml'));
});

test('PHI is masked unless showPhi; bytes become their length', (t) => {
  const context = { job: { patientId: 'P123', PatientName: 'DOE^JANE', AccessionNumber: 'A1', StudyInstanceUID: '1.2.3' }, data: new Uint8Array(10) };
  t.deepEqual(sanitize(context, { showPhi: false }), { job: { patientId: MASK, PatientName: MASK, AccessionNumber: MASK, StudyInstanceUID: '1.2.3' }, data: '<10 bytes>' });
  t.deepEqual(sanitize(context, { showPhi: true }), { job: context.job, data: '<10 bytes>' });
});

test('with inspect.stately.url, inspection events reach that WebSocket (Stately Inspector protocol)', async (t) => {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  t.teardown(() => new Promise<void>((r) => wss.close(() => r())));
  const received: { type: string; name?: string }[] = [];
  wss.on('connection', (ws) => ws.on('message', (m) => received.push(JSON.parse(String(m)))));
  const address = wss.address() as { port: number };
  await inspected(t, { enabled: false, stately: { url: `ws://127.0.0.1:${address.port}` } });
  await eventually(t, 'actor events at the Stately socket', () => received.some((e) => e.type === '@xstate.actor' && e.name === 'listener:main'));
  t.true(received.some((e) => e.type === '@xstate.snapshot'));
});
