// A listener with queryRetrieve: Q/R FIND and MOVE contexts accepted in uncompressed Little Endian only
// (the router reads and writes identifiers itself); without it they are refused as before.
import test from 'ava';
import { acceptorPolicy } from '../../actors/router.ts';
import type { ListenerConfig } from '../../config/config.ts';
import { negotiate, selectTransferSyntax, withCommitmentReports } from '../../protocol/negotiation.ts';
import { PATIENT_ROOT_MOVE, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STUDY_ROOT_FIND, STUDY_ROOT_GET } from '../../protocol/uids.ts';

const ILE = '1.2.840.10008.1.2';
const ELE = '1.2.840.10008.1.2.1';
const EBE = '1.2.840.10008.1.2.2';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const CT = '1.2.840.10008.5.1.4.1.1.2';

const listener = (qr: boolean): ListenerConfig => ({
  name: 'main', aeTitles: ['R'], port: 1, bind: '127.0.0.1', acceptCallingAeTitles: [], allowedSources: [], rateLimit: { attempts: 1, perSeconds: 1 },
  sopClasses: 'default', transferSyntaxes: 'default', transferSyntaxPolicy: 'proposal-order', maxPduLength: 16384, maxAssociations: 1,
  timeouts: { artimSeconds: 1, idleSeconds: 1, dimseSeconds: 1 },
  storageCommitment: { enabled: false, commitWhen: 'delivered', report: 'same-association-first', timeoutHours: 24 },
  ...(qr ? { queryRetrieve: { sources: ['local'], move: 'relay' as const } } : {}),
});

test('Q/R contexts (FIND, MOVE, GET) only on a listener with queryRetrieve, in Little Endian only', (t) => {
  const withQr = acceptorPolicy(listener(true));
  const without = acceptorPolicy(listener(false));
  t.deepEqual(selectTransferSyntax(STUDY_ROOT_FIND, [EBE, ELE, ILE], withQr), { result: 0, transferSyntax: ELE });
  t.deepEqual(selectTransferSyntax(PATIENT_ROOT_MOVE, [ILE], withQr), { result: 0, transferSyntax: ILE });
  t.is(selectTransferSyntax(STUDY_ROOT_FIND, [JPEG_BASELINE, EBE], withQr).result, 4, 'no uncompressed LE: transfer syntaxes not supported');
  t.is(selectTransferSyntax(STUDY_ROOT_FIND, [ELE], without).result, 3, 'abstract syntax not supported without queryRetrieve');
  t.is(selectTransferSyntax(STUDY_ROOT_GET, [ELE], withQr).result, 0);
  t.is(selectTransferSyntax(STUDY_ROOT_GET, [ELE], without).result, 3);
});

test('the requestor may take the SCP role for storage classes only on a Q/R listener (C-GET)', (t) => {
  const rq = {
    type: 'A-ASSOCIATE-RQ' as const, protocolVersion: 1, calledAeTitle: 'R', callingAeTitle: 'GETSCU', applicationContext: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: STUDY_ROOT_GET, transferSyntaxes: [ELE] }, { id: 3, abstractSyntax: CT, transferSyntaxes: [ELE] }],
    userInformation: { maxPduLength: 16384, implementationClassUid: '1.2.3', roleSelections: [{ sopClassUid: CT, scuRole: false, scpRole: true }], sopClassExtended: [], sopClassCommonExtended: [] },
  };
  const roles = (qr: boolean) => {
    const r = negotiate(rq, acceptorPolicy(listener(qr)));
    return r.accepted ? r.ac.userInformation.roleSelections : undefined;
  };
  t.deepEqual(roles(true), [{ sopClassUid: CT, scuRole: false, scpRole: true }]);
  t.deepEqual(roles(false), [{ sopClassUid: CT, scuRole: false, scpRole: false }]);
});

test('a Storage Commitment peer reports in SCP role on any listener; on a Q/R listener the storage classes keep theirs', (t) => {
  const roleSelections = [{ sopClassUid: CT, scuRole: false, scpRole: true }, { sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, scuRole: false, scpRole: true }];
  const rq = {
    type: 'A-ASSOCIATE-RQ' as const, protocolVersion: 1, calledAeTitle: 'R', callingAeTitle: 'ARCHIVE', applicationContext: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, transferSyntaxes: [ELE] }, { id: 3, abstractSyntax: CT, transferSyntaxes: [ELE] }],
    userInformation: { maxPduLength: 16384, implementationClassUid: '1.2.3', roleSelections, sopClassExtended: [], sopClassCommonExtended: [] },
  };
  const scpRoles = (qr: boolean) => {
    const r = negotiate(rq, withCommitmentReports(acceptorPolicy(listener(qr))));
    return r.accepted ? r.ac.userInformation.roleSelections.map((s) => s.scpRole) : undefined;
  };
  t.deepEqual(scpRoles(true), [true, true]);
  t.deepEqual(scpRoles(false), [false, true]);
});
