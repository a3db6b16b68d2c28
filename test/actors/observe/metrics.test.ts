// Forwarding seen through the inspector (issue 6): each peer machine owns its outbound association
// (the tree shows peer:NAME > association > its DIMSE transaction while a C-STORE is in flight, and
// nothing once released), and the metrics count the forwards, their round trips, bytes and
// association openings / failures exactly.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { connect } from 'node:net';
import WebSocket from 'ws';
import { failureReason } from '../../../actors/observe/metrics.ts';
import { SOP, TS, writeDataset } from '../../helpers/dicom-files.ts';
import { eventually, send } from '../../helpers/in-process-router.ts';
import { DCMTK_ENV, freePort, run } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';
import { inspectedRouter } from '../../helpers/inspected-router.ts';

type Node = { id: string; machine: string; state: string[]; children: Node[] };

async function forwardingRouter(t: ExecutionContext, peers: Record<string, unknown>[], forwardTo: string) {
  const r = await inspectedRouter(t, { rules: `rules:\n  - name: all\n    then:\n      forward: [${forwardTo}]\n`, peers });
  const metric = async (line: string) => {
    const text = await (await r.get('/metrics')).text();
    return Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  return { ...r, metric };
}

/** Polls an async condition (HTTP) until it holds. */
async function until<T>(t: ExecutionContext, what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) return void t.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const peerNode = (tree: Node, name: string) => tree.children.find((c) => c.id === `peer:${name}`);

test('a forward in progress shows peer > association (Sta6) > transaction in /api/actors and /api/peers; gone after release; metrics read exactly N', async (t) => {
  const N = 3;
  const scp = await scriptedScp({ delayMs: 250 });
  t.teardown(() => scp.close());
  const r = await forwardingRouter(t, [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port, idleReleaseSeconds: 0.3 }], 'PACS');
  // The WebSocket push (rxjs auditTime over the inspection stream) carries the same tree.
  const ws = new WebSocket(`${r.server.url.replace('http', 'ws')}/ws`);
  t.teardown(() => ws.terminate());
  const pushed: Node[] = [];
  ws.on('message', (m) => pushed.push(JSON.parse(String(m)).tree));
  await new Promise((resolve) => ws.once('open', resolve));

  await send(r.port, r.dir, Array.from({ length: N }, () => ({ sopClassUid: SOP.ct, pixelBytes: 4096 })));
  const during = await until(t, 'the outbound association with a C-STORE in flight', async () => {
    const tree = (await r.json('/api/actors')) as Node;
    const assoc = peerNode(tree, 'PACS')?.children.find((c) => c.id === 'association');
    return assoc && assoc.state[0] === 'Sta6' && assoc.children.some((d) => d.machine === 'scuRequest') ? assoc : undefined;
  });
  t.is(during?.machine, 'association');
  const peers = await r.json('/api/peers');
  t.is(peers[0].slots[0].association?.id, 'association');
  t.regex(peers[0].slots[0].association?.summary ?? '', /DICOM_ROUTER → PACS \(requestor\)/);
  await eventually(t, 'pushed over the WebSocket', () =>
    pushed.some((tree) => peerNode(tree, 'PACS')?.children.some((c) => c.machine === 'association')),
  );

  await eventually(t, 'every instance forwarded', () => r.router.queue.depth('PACS').pending === 0 && scp.stores.length === N);
  await until(t, 'the association released and gone from the tree', async () => {
    const tree = (await r.json('/api/actors')) as Node;
    const peer = peerNode(tree, 'PACS');
    return peer && peer.state[0] === 'idle' && peer.children.length === 0 ? true : undefined;
  });
  t.is((await r.json('/api/peers'))[0].slots[0].association, null);

  t.is(await r.metric('dicom_router_instances_forwarded_total{peer="PACS"}'), N);
  t.is(await r.metric('dicom_router_peer_dimse_duration_seconds_count{peer="PACS",service="C-STORE"}'), N);
  t.is(await r.metric('dicom_router_peer_associations_opened_total{peer="PACS"}'), 1);
  // Every P-DATA-TF PDU the peer received, on the wire: its 6-byte header plus its length field.
  const wire = scp.pduLengths.reduce((n, l) => n + 6 + l, 0);
  t.is(await r.metric('dicom_router_peer_bytes_sent_total{peer="PACS"}'), wire);
  t.true(wire >= scp.stores.reduce((n, s) => n + s.dataset.length, 0));
  // One C-STORE-RSP per instance came back.
  t.true((await r.metric('dicom_router_peer_bytes_received_total{peer="PACS"}')) > 0);
  // The inbound series are unchanged by the outbound traffic.
  t.is(await r.metric('dicom_router_dimse_duration_seconds_count{service="C-STORE"}'), N);
  t.true(Number.isNaN(await r.metric('dicom_router_dimse_duration_seconds_count{service="scuRequest"}')));
});

test('a peer that refuses connections: association failures counted with their reason', async (t) => {
  const down = await freePort();
  const r = await forwardingRouter(t, [{ name: 'DOWN', aeTitle: 'DOWN', host: '127.0.0.1', port: down, timeouts: { connectSeconds: 1, dimseSeconds: 5 } }], 'DOWN');
  await send(r.port, r.dir, [{ sopClassUid: SOP.ct }]);
  await until(t, 'a counted failure', async () => ((await r.metric('dicom_router_peer_association_failures_total{peer="DOWN",reason="connection-refused"}')) >= 1 ? true : undefined));
  t.true(Number.isNaN(await r.metric('dicom_router_peer_associations_opened_total{peer="DOWN"}')));
});

test('an item of a SOP class the open association was not negotiated for: released and a new one opened (the peer machine decides), delivered', async (t) => {
  const scp = await scriptedScp();
  t.teardown(() => scp.close());
  const r = await forwardingRouter(t, [{ name: 'PACS', aeTitle: 'PACS', host: '127.0.0.1', port: scp.port, idleReleaseSeconds: 60 }], 'PACS');
  await send(r.port, r.dir, [{ sopClassUid: SOP.ct }]);
  await eventually(t, 'the CT delivered, the association kept open', () => scp.stores.length === 1);
  const mr = writeDataset(join(r.dir, 'mr'), { count: 1, sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE });
  const sent = await run('storescu', ['-aec', 'DICOM_ROUTER', '127.0.0.1', String(r.port), ...mr], { env: DCMTK_ENV });
  t.is(sent.code, 0, sent.stderr);
  await eventually(t, 'the MR delivered', () => scp.stores.length === 2 && r.router.queue.depth('PACS').pending === 0);
  t.is(scp.stores[1].command.AffectedSOPClassUID, SOP.mr);
  t.is(await r.metric('dicom_router_peer_associations_opened_total{peer="PACS"}'), 2);
  t.true(Number.isNaN(await r.metric('dicom_router_peer_association_failures_total{peer="PACS",reason="lost"}')), 'a renegotiation is not a failure');
  t.is(await r.metric('dicom_router_instances_forwarded_total{peer="PACS"}'), 2);
});

test('failure reasons', (t) => {
  t.is(failureReason('association rejected: rejected-permanent, source 1, reason 7 (called-AE-title-not-recognized)'), 'rejected-permanent');
  t.is(failureReason('association rejected: rejected-transient, source 3, reason 1 (temporary-congestion)'), 'rejected-transient');
  t.is(failureReason('connection to 127.0.0.1:1 failed before the association was established: ECONNREFUSED: connect ECONNREFUSED'), 'connection-refused');
  t.is(failureReason('TLS handshake not completed after 1000 ms'), 'timeout');
  t.is(failureReason(undefined), 'other');
});

test('a connection refused before any DICOM exchange (source address not allowed) is counted and in the console rejections, with its address', async (t) => {
  const { port, json, get } = await inspectedRouter(t, { listener: { allowedSources: ['192.0.2.1'] } });
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('close', () => resolve()).once('error', () => {}));
  let view: any;
  for (let i = 0; i < 100; i++) {
    view = await json('/api/console');
    if (view.glance.rejections.total > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is(view.glance.rejections.total, 1);
  t.like(view.glance.rejections.recent[0], { reason: 'source-address-not-allowed', listener: 'main', callingAe: '', calledAe: '' });
  t.regex(view.glance.rejections.recent[0].address, /^127\.0\.0\.1:\d+$/);
  t.regex(await (await get('/metrics')).text(), /dicom_router_connections_refused_total\{listener="main",reason="source-address-not-allowed"\} 1/);
});
