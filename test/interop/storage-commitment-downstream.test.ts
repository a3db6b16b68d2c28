// Storage Commitment toward a peer (issue 15, the router as SCU) with two real Orthancs: MODALITY sends
// to the router and asks it for commitment (listener commitWhen: committed-downstream); the router
// forwards to ARCHIVE, asks ARCHIVE for commitment (N-ACTION) and takes its N-EVENT-REPORT on the
// listener (Orthanc reports on a new association to the AE it has in DicomModalities, here the
// router's calling AE title at the router's port). The upstream report waits for ARCHIVE's.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyActorRef } from 'xstate';
import { peerId } from '../../machines/router.machine.ts';
import { eventually, routerWith } from '../helpers/in-process-router.ts';
import { orthancWithImages, reportOf, requestCommitment, rest, sendAllToRouter, settledReport } from '../helpers/orthanc-commitment.ts';
import { startOrthanc } from '../helpers/orthanc.ts';
import type { Orthanc } from '../helpers/orthanc.ts';
import { freePort, tempDir } from '../helpers/processes.ts';

const rm = (dir: string) => rmSync(dir, { recursive: true, force: true });
const RULES = 'rules:\n  - name: all-to-archive\n    then: { forward: [ARCHIVE] }\n';
const timeouts = { connectSeconds: 5, dimseSeconds: 10 };
const peers = (modalityPort: number, archivePort: number) => [
  { name: 'MODALITY', aeTitle: 'MODALITY', host: '127.0.0.1', port: modalityPort, retry: { attempts: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 2 }, timeouts },
  {
    name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: '127.0.0.1', port: archivePort, retry: { attempts: 5, initialBackoffSeconds: 1, maxBackoffSeconds: 2 }, timeouts,
    storageCommitment: { enabled: true, batch: 500, waitHours: 1 },
  },
];
const downstream = { storageCommitment: { enabled: true, commitWhen: 'committed-downstream' } };

async function archive(t: ExecutionContext, port: number, routerPort: number, lua?: string): Promise<Orthanc> {
  const orthanc = await startOrthanc({ port, aeTitle: 'ARCHIVE', modalities: { router: ['DICOM_ROUTER', '127.0.0.1', routerPort] }, ...(lua ? { lua } : {}) });
  t.teardown(async () => { await orthanc.stop(); rm(orthanc.dir); });
  return orthanc;
}

test('committed-downstream: the upstream report waits for the archive\'s, which may come after a router restart', async (t) => {
  const [modalityPort, archivePort, routerPort, nobody] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const storageDir = join(tempDir('stgcmt-down-'), 'data');
  t.teardown(() => rm(join(storageDir, '..')));
  const start = () => routerWith(peers(modalityPort, archivePort), RULES, { storageDir, port: routerPort, listener: downstream });
  const first = await start();
  let firstStopped = false;
  t.teardown(async () => { if (!firstStopped) await first.stop(); rm(first.dir); });
  // ARCHIVE first reports to a port where nobody listens: its report is lost, as to a router that is down.
  const arch = await archive(t, archivePort, nobody);
  const { orthanc: modality, sops } = await orthancWithImages(modalityPort, routerPort, 2);
  t.teardown(async () => { await modality.stop(); rm(modality.dir); });
  await sendAllToRouter(modality);
  const uid = await requestCommitment(modality, sops);
  await eventually(t, 'ARCHIVE has taken the router\'s N-ACTION for both instances', () =>
    sops.every((s) => first.commitmentScu.store.instance('ARCHIVE', s)?.state === 'requested') &&
    first.commitmentScu.store.requests().some((r) => r.state === 'requested'), 30_000);
  const asked = first.commitmentScu.store.instance('ARCHIVE', sops[0])!;
  t.regex(asked.transactionUid!, /^2\.25\.\d+$/);
  t.deepEqual(first.queue.deliveries(sops[0]).map((d) => d.peer), ['ARCHIVE'], 'delivered');
  // Delivered, but the upstream request waits for ARCHIVE's commitment, and says so.
  await eventually(t, 'the upstream request says what it waits for', () => /storage commitment from ARCHIVE/.test(first.commitment.store.get(uid)?.waitingFor?.[sops[0]] ?? ''), 10_000);
  t.is(first.commitment.store.get(uid)!.state, 'waiting');
  t.is((await reportOf(modality, uid)).Status, 'Pending');
  t.true(first.commitmentScu.holds(sops[0]), 'retention keeps an instance whose downstream commitment has not come back');
  await first.stop();
  firstStopped = true;
  // ARCHIVE now reaches the router; the restarted router asks again (its report was lost) and gets it.
  await rest(arch, 'PUT', '/modalities/router', { AET: 'DICOM_ROUTER', Host: '127.0.0.1', Port: routerPort });
  const second = await start();
  t.teardown(async () => { await second.stop(); rm(second.dir); });
  const report = await settledReport(t, modality, uid);
  t.is(report.Status, 'Success', JSON.stringify(report));
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID).sort(), [...sops].sort());
  for (const s of sops) {
    const entry = second.commitmentScu.store.instance('ARCHIVE', s)!;
    t.is(entry.state, 'committed');
    t.not(entry.transactionUid, asked.transactionUid, 'asked again under a new Transaction UID');
  }
  const request = second.commitmentScu.store.request(second.commitmentScu.store.instance('ARCHIVE', sops[0])!.transactionUid!)!;
  t.is(request.state, 'done');
  t.is(request.reportedVia, 'listener');
  t.is(second.commitmentScu.store.request(asked.transactionUid!)?.state, 'abandoned');
  t.false(second.commitmentScu.holds(sops[0]));
  await eventually(t, 'the upstream report acknowledged', () => second.commitment.store.get(uid)?.state === 'reported', 10_000);
});

// ARCHIVE deletes instance number 2 as soon as it has stored it (once): it acknowledged the C-STORE but does not hold it.
const LOSE_SECOND = `
lost = false
function OnStoredInstance(instanceId, tags, metadata, origin)
  if not lost and tags['InstanceNumber'] == '2' then
    lost = true
    RestApiDelete('/instances/' .. instanceId)
  end
end
`;

test('an instance the archive does not hold: failed upstream naming the archive and its reason, a dead letter, resent by queue retry', async (t) => {
  const [modalityPort, archivePort, routerPort] = [await freePort(), await freePort(), await freePort()];
  const router = await routerWith(peers(modalityPort, archivePort), RULES, { port: routerPort, listener: downstream });
  t.teardown(async () => { await router.stop(); rm(router.dir); });
  await archive(t, archivePort, routerPort, LOSE_SECOND);
  const { orthanc: modality, sops } = await orthancWithImages(modalityPort, routerPort, 2);
  t.teardown(async () => { await modality.stop(); rm(modality.dir); });
  await sendAllToRouter(modality);
  const uid = await requestCommitment(modality, sops);
  const report = await settledReport(t, modality, uid);
  t.is(report.Status, 'Failure', JSON.stringify(report));
  t.deepEqual((report.Failures ?? []).map((f) => [f.SOPInstanceUID, f.FailureReason]), [[sops[1], 0x0110]]);
  t.deepEqual((report.Success ?? []).map((s) => s.SOPInstanceUID), [sops[0]]);
  t.regex(router.commitment.store.get(uid)!.why![sops[1]], /storage commitment failed at ARCHIVE: failure reason 0112 no such object instance/);
  const lost = router.commitmentScu.store.instance('ARCHIVE', sops[1])!;
  t.is(lost.state, 'failed');
  t.is(lost.failureReason, 0x0112);
  t.is(router.commitmentScu.store.instance('ARCHIVE', sops[0])!.state, 'committed');
  // The dead letter, for ARCHIVE, with the reason in words.
  const dead = router.queue.list('ARCHIVE').filter((i) => i.state === 'dead');
  t.deepEqual(dead.map((i) => i.sopInstanceUid), [sops[1]]);
  t.regex(dead[0].deadReason!, /storage commitment: failure reason 0112 no such object instance/);
  t.is(dead[0].rule, 'all-to-archive');
  // queue retry: sent again (ARCHIVE keeps it this time), then asked again, and committed.
  // As the inspector's POST /api/queues/ARCHIVE/retry does: the items due now, the peer woken.
  t.is(await router.queue.retry('ARCHIVE'), 1);
  (router.actor.system.get(peerId('ARCHIVE')) as AnyActorRef).send({ type: 'RETRY_REQUESTED' });
  await eventually(t, 'resent and committed by ARCHIVE', () => router.commitmentScu.store.instance('ARCHIVE', sops[1])?.state === 'committed', 60_000);
  t.not(router.commitmentScu.store.instance('ARCHIVE', sops[1])!.transactionUid, lost.transactionUid);
  t.is(router.queue.list('ARCHIVE').length, 0);
});
