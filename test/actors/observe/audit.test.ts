// The audit trail: every association (established, refused, ended) and every instance received and
// forwarded, as PS3.15 A.5 shaped JSON lines in the data folder and as RFC 5424 syslog messages.
import test from 'ava';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import type { AuditRecord } from '../../../actors/observe/audit.ts';
import { VERIFICATION_SOP_CLASS } from '../../../protocol/uids.ts';
import { eventually, routerWith, send, silent } from '../../helpers/in-process-router.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

test('associations and instances received and forwarded are audited, to a file and to syslog', async (t) => {
  const syslog: string[] = [];
  const collector = createSocket('udp4');
  collector.on('message', (m) => syslog.push(m.toString()));
  await new Promise<void>((r) => collector.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => collector.close());
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const r = await routerWith(
    [{ aeTitle: 'PACS', host: '127.0.0.1', port: scp.port, retry: { attempts: 3, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.1, jitter: 0 } }],
    'rules:\n  - name: all\n    then: { forward: [PACS] }\n',
    { config: { audit: { syslog: { host: '127.0.0.1', port: (collector.address() as AddressInfo).port } } } },
  );
  const study = { patientId: 'AUDIT-P1', studyInstanceUid: '1.2.826.0.1.3680043.9.7133.4242' };
  const [a, b] = await send(r.port, r.dir, [study, study]);
  await eventually(t, 'both forwarded', () => r.queue.outstanding(a) === 0 && r.queue.outstanding(b) === 0);
  await t.throwsAsync(ScuAssociation.open({
    host: '127.0.0.1', port: r.port, callingAeTitle: 'INTRUDER', calledAeTitle: 'NOT_THE_ROUTER',
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
  }));
  await r.stop(0);

  const dir = join(r.spool.dir, 'audit');
  const records: AuditRecord[] = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l)));
  const events = records.map((rec) => `${rec.EventIdentification.EventID.meaning}/${rec.EventIdentification.EventActionCode}/${rec.EventIdentification.EventTypeCode?.[0]?.meaning ?? ''}/${rec.EventIdentification.EventOutcomeIndicator}`);
  t.is(events.filter((e) => e === 'Application Activity/E/Application Start/0').length, 1);
  t.is(events.filter((e) => e === 'Application Activity/E/Application Stop/0').length, 1);
  // One record per study per association received, and per study per peer forwarded (PS3.15 A.5.3.3).
  t.is(events.filter((e) => e === 'DICOM Instances Transferred/C//0').length, 1, 'one record for the study received');
  t.is(events.filter((e) => e === 'DICOM Instances Transferred/R//0').length, 1, 'one record for the study forwarded');
  t.true(events.includes('User Authentication/E/Login/0') && events.includes('User Authentication/E/Logout/0'));
  const refused = records.find((rec) => rec.EventIdentification.EventOutcomeIndicator === 4)!;
  t.is(refused.ActiveParticipant[0].UserID, 'INTRUDER');
  t.regex(refused.EventIdentification.EventOutcomeDescription ?? '', /called AE title 'NOT_THE_ROUTER'/);
  const received = records.find((rec) => rec.EventIdentification.EventActionCode === 'C')!;
  t.is(received.ActiveParticipant[0].UserID, 'MODALITY');
  t.true(received.ActiveParticipant[0].UserIsRequestor);
  t.is(received.ParticipantObjectIdentification?.find((o) => o.ParticipantObjectTypeCode === 1)?.ParticipantObjectID, 'AUDIT-P1');
  const classesOf = (rec: AuditRecord) => rec.ParticipantObjectIdentification?.find((o) => o.ParticipantObjectTypeCode === 2)?.ParticipantObjectDescription?.SOPClass ?? [];
  t.is(classesOf(received).reduce((n, c) => n + c.NumberOfInstances, 0), 2);
  t.deepEqual(classesOf(received).flatMap((c) => c.Instance.map((i) => i.UID)).sort(), [a, b].sort(), 'the instance UIDs are in it');
  const forwarded = records.find((rec) => rec.EventIdentification.EventActionCode === 'R')!;
  t.is(classesOf(forwarded).reduce((n, c) => n + c.NumberOfInstances, 0), 2);
  t.is(forwarded.ActiveParticipant[1].UserID, 'PACS');
  t.is(forwarded.ActiveParticipant[1].NetworkAccessPointID, `127.0.0.1:${scp.port}`);
  await eventually(t, 'syslog received every record', () => syslog.length === records.length);
  t.regex(syslog[0], /^<85>1 \S+ \S+ dicom-router \d+ DICOM\+RFC3881 - \{"EventIdentification"/);
});
