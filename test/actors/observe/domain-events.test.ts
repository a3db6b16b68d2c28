// The router's domain events, from a real exchange: an association opened, two instances stored and
// queued for PACS, the association closed, both forwarded to a scripted SCP; an association rejected
// with its reason, calling AE and address. No bytes travel in them.
import test from 'ava';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import type { DomainEvent } from '../../../actors/observe/domain-events.ts';
import { VERIFICATION_SOP_CLASS } from '../../../protocol/uids.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

test('association opened, instances stored (queued for PACS), closed, forwarded; a rejection with its reason', async (t) => {
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'PACS', host: '127.0.0.1', port: scp.port }], 'rules:\n  - name: all\n    then: { forward: [PACS] }\n');
  t.teardown(() => r.stop(0));
  const seen: DomainEvent[] = [];
  const subscription = r.events.all$.subscribe((e) => seen.push(e));
  t.teardown(() => subscription.unsubscribe());

  const [a, b] = await send(r.port, r.dir, [{ modality: 'MR', patientId: 'EV-1' }, { modality: 'MR', patientId: 'EV-1' }], 'MRI_3T');
  await eventually(t, 'both forwarded', () => seen.filter((e) => e.type === 'instance-forwarded').length === 2);
  await eventually(t, 'the association closed', () => seen.some((e) => e.type === 'association-closed'));

  const opened = seen.find((e) => e.type === 'association-opened');
  t.like(opened, { listener: 'main', callingAe: 'MRI_3T', calledAe: 'DICOM_ROUTER' });
  const stored = seen.filter((e) => e.type === 'instance-stored');
  t.deepEqual(stored.map((e) => e.sopInstanceUid), [a, b]);
  for (const e of stored) {
    t.like(e, { listener: 'main', callingAe: 'MRI_3T', modality: 'MR', patientId: 'EV-1', queued: ['PACS'], held: [], skipped: [] });
    t.true(e.bytes > 0);
    t.regex(e.address, /^(::ffff:)?127\.0\.0\.1:\d+$/);
  }
  const forwarded = seen.filter((e) => e.type === 'instance-forwarded');
  t.deepEqual(forwarded.map((e) => e.sopInstanceUid).sort(), [a, b].sort());
  for (const e of forwarded) t.like(e, { peer: 'PACS', status: 0, patientId: 'EV-1' });
  t.true(seen.indexOf(opened!) < seen.indexOf(stored[0]));
  // Facts only: no buffer in any event.
  t.false(seen.some((e) => Object.values(e).some((v) => v instanceof Uint8Array)));

  await t.throwsAsync(ScuAssociation.open({
    host: '127.0.0.1', port: r.port, callingAeTitle: 'INTRUDER', calledAeTitle: 'NOT_THE_ROUTER',
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
  }));
  await eventually(t, 'the rejection', () => seen.some((e) => e.type === 'association-rejected'));
  const rejected = seen.find((e) => e.type === 'association-rejected');
  t.like(rejected, { listener: 'main', reason: 'called-ae-not-recognized', callingAe: 'INTRUDER', calledAe: 'NOT_THE_ROUTER' });
  t.regex(rejected!.type === 'association-rejected' ? rejected!.detail : '', /called AE title 'NOT_THE_ROUTER'/);
  // A rejected association was never opened, so it is never closed either.
  t.is(seen.filter((e) => e.type === 'association-closed').length, 1);
});
