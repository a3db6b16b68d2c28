// Storage Commitment through the router with Orthanc as the requester (issue 15): Orthanc sends
// instances to the router (REST /modalities/{id}/store), asks it for storage commitment (REST
// /modalities/{id}/storage-commitment: N-ACTION), and receives the N-EVENT-REPORT on its own DICOM
// port; the outcome is read back from Orthanc's REST API (/storage-commitment/{transaction}).
import test from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyActorRef } from 'xstate';
import { eventually, routerWith } from '../helpers/in-process-router.ts';
import { newUid } from '../helpers/dicom-files.ts';
import { orthancWithImages, reportOf, requestCommitment, sendAllToRouter, settledReport } from '../helpers/orthanc-commitment.ts';
import { freePort, startStorescp, tempDir } from '../helpers/processes.ts';

/** The router stopped and its temp folder (spool, journal segments: tens of MB) removed. */
async function stopAndRemove(router: { stop(): Promise<void>; dir: string }): Promise<void> {
  await router.stop();
  rm(router.dir);
}
const rm = (dir: string) => rmSync(dir, { recursive: true, force: true });


const orthancPeer = (port: number) => ({ name: 'MODALITY', aeTitle: 'MODALITY', host: '127.0.0.1', port, retry: { attempts: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 2 }, timeouts: { connectSeconds: 5, dimseSeconds: 10 } });

test('commitWhen stored: Orthanc sends, asks, and gets every instance committed on a new association', async (t) => {
  const orthancPort = await freePort();
  const router = await routerWith([orthancPeer(orthancPort)], 'rules: []\n', { listener: { storageCommitment: { enabled: true, commitWhen: 'stored' } } });
  t.teardown(() => stopAndRemove(router));
  const { orthanc, sops } = await orthancWithImages(orthancPort, router.port, 3);
  t.teardown(async () => { await orthanc.stop(); rm(orthanc.dir); });
  await sendAllToRouter(orthanc);
  const uid = await requestCommitment(orthanc, sops);
  const report = await settledReport(t, orthanc, uid);
  t.is(report.Status, 'Success', JSON.stringify(report));
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID).sort(), [...sops].sort());
  // Orthanc shows the report once it has it; the router records it once Orthanc's N-EVENT-REPORT-RSP is in.
  await eventually(t, 'the router records the report acknowledged', () => router.commitment.store.get(uid)?.state === 'reported', 10_000);
  t.is(router.commitment.store.get(uid)!.reportedVia, 'new-association');
});

test('an instance the router never received is reported failed with 0112; the others committed', async (t) => {
  const orthancPort = await freePort();
  const router = await routerWith([orthancPeer(orthancPort)], 'rules: []\n', { listener: { storageCommitment: { enabled: true, commitWhen: 'stored' } } });
  t.teardown(() => stopAndRemove(router));
  const { orthanc, sops } = await orthancWithImages(orthancPort, router.port, 2);
  t.teardown(async () => { await orthanc.stop(); rm(orthanc.dir); });
  await sendAllToRouter(orthanc);
  const missing = newUid();
  const uid = await requestCommitment(orthanc, [...sops, missing]);
  const report = await settledReport(t, orthanc, uid);
  t.is(report.Status, 'Failure', JSON.stringify(report));
  t.deepEqual((report.Failures ?? []).map((f) => [f.SOPInstanceUID, f.FailureReason]), [[missing, 0x0112]]);
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID).sort(), [...sops].sort());
  t.is(router.commitment.store.get(uid)!.why?.[missing], 'not received by the router');
});

test('commitWhen delivered: the report waits while the destination is down, then comes once it has everything', async (t) => {
  const orthancPort = await freePort();
  const wsPort = await freePort();
  const ws = { name: 'WS', aeTitle: 'STORESCP', host: '127.0.0.1', port: wsPort, retry: { attempts: 1000, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 10 } };
  const router = await routerWith([orthancPeer(orthancPort), ws], 'rules:\n  - name: all-to-ws\n    then: { forward: [WS] }\n', { listener: { storageCommitment: { enabled: true, commitWhen: 'delivered' } } });
  t.teardown(() => stopAndRemove(router));
  const { orthanc, sops } = await orthancWithImages(orthancPort, router.port, 2);
  t.teardown(async () => { await orthanc.stop(); rm(orthanc.dir); });
  await sendAllToRouter(orthanc);
  const uid = await requestCommitment(orthanc, sops);
  // Waiting, and saying for what, while WS is down (its queue items retried).
  const deadline = Date.now() + 30_000;
  while (Object.keys(router.commitment.store.get(uid)?.waitingFor ?? {}).length < sops.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const waiting = router.commitment.store.get(uid)!;
  t.is(waiting.state, 'waiting');
  t.regex(waiting.waitingFor![sops[0]], /not yet delivered to WS/);
  t.is((await reportOf(orthanc, uid)).Status, 'Pending');
  t.true(router.commitment.holds(sops[0]), 'retention keeps an instance whose commitment is pending');
  const job = router.actor.getSnapshot().children[`commitment-${uid}`] as AnyActorRef | undefined;
  t.is(job?.getSnapshot().value, 'waiting', 'the request is a job in the actor tree');
  t.is(job?.getSnapshot().context.waitingFor, sops.length);
  const received = tempDir('stgcmt-ws-');
  const storescp = await startStorescp(received, { port: wsPort, aeTitle: 'STORESCP' });
  t.teardown(async () => { await storescp.stop(); rm(received); });
  const report = await settledReport(t, orthanc, uid);
  t.is(report.Status, 'Success', JSON.stringify(report));
  t.is(router.queue.deliveries(sops[0]).length, 1, 'committed only once delivered');
  t.is(router.queue.deliveries(sops[1]).length, 1);
  await eventually(t, 'the router records the report acknowledged', () => router.commitment.store.get(uid)?.state === 'reported', 10_000);
  t.false(router.commitment.holds(sops[0]));
  await eventually(t, 'the job leaves the tree once reported', () => router.actor.getSnapshot().children[`commitment-${uid}`] === undefined, 5000);
});

test('a restart between the request and the report: the request is kept and reported by the new process', async (t) => {
  const orthancPort = await freePort();
  const wsPort = await freePort();
  const storageDir = join(tempDir('stgcmt-restart-'), 'data');
  const ws = { name: 'WS', aeTitle: 'STORESCP', host: '127.0.0.1', port: wsPort, retry: { attempts: 1000, initialBackoffSeconds: 1, maxBackoffSeconds: 1 }, timeouts: { connectSeconds: 2, dimseSeconds: 10 } };
  const start = () => routerWith([orthancPeer(orthancPort), ws], 'rules:\n  - name: all-to-ws\n    then: { forward: [WS] }\n', { storageDir, listener: { storageCommitment: { enabled: true, commitWhen: 'delivered' } } });
  const first = await start();
  let firstStopped = false;
  t.teardown(() => (firstStopped ? rm(first.dir) : stopAndRemove(first)));
  const { orthanc, sops } = await orthancWithImages(orthancPort, first.port, 2);
  t.teardown(async () => { await orthanc.stop(); rm(orthanc.dir); });
  await sendAllToRouter(orthanc);
  const uid = await requestCommitment(orthanc, sops);
  await eventually(t, 'the request recorded and waiting for WS', () => Object.keys(first.commitment.store.get(uid)?.waitingFor ?? {}).length === sops.length, 30_000);
  await first.stop();
  firstStopped = true;
  const second = await start();
  t.teardown(async () => { await stopAndRemove(second); rm(join(storageDir, '..')); });
  t.is(second.commitment.store.get(uid)?.state, 'waiting');
  t.is((second.actor.getSnapshot().children[`commitment-${uid}`] as AnyActorRef | undefined)?.getSnapshot().value, 'waiting', 'resumed as a job');
  t.true(second.commitment.holds(sops[0]), 'the new process holds its instances back from retention too');
  const received = tempDir('stgcmt-ws-');
  const storescp = await startStorescp(received, { port: wsPort, aeTitle: 'STORESCP' });
  t.teardown(async () => { await storescp.stop(); rm(received); });
  const report = await settledReport(t, orthanc, uid);
  t.is(report.Status, 'Success', JSON.stringify(report));
  await eventually(t, 'the router records the report acknowledged', () => second.commitment.store.get(uid)?.state === 'reported', 10_000);
  t.is(second.commitment.store.get(uid)?.reportedVia, 'new-association');
});
