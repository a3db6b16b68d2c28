import test from 'ava';
import { negotiate, selectTransferSyntax, withCommitmentReports } from '../../protocol/negotiation.ts';
import type { AcceptorPolicy } from '../../protocol/negotiation.ts';
import type { AssociateRq } from '../../protocol/pdu.types.ts';
import { DEFAULT_STORAGE_SOP_CLASSES, DEFAULT_TRANSFER_SYNTAXES, IMPLEMENTATION_CLASS_UID, VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';

const ILE = '1.2.840.10008.1.2';
const ELE = '1.2.840.10008.1.2.1';
const EBE = '1.2.840.10008.1.2.2';
const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
const BZIP2_PRIVATE = '1.3.6.1.4.1.5962.300.1'; // PixelMed's private bzip2 syntax: declined
const CT = '1.2.840.10008.5.1.4.1.1.2';

const policy: AcceptorPolicy = {
  aeTitles: ['DICOM_ROUTER', 'ROUTER_B'],
  acceptCallingAeTitles: [],
  sopClasses: [VERIFICATION_SOP_CLASS, ...DEFAULT_STORAGE_SOP_CLASSES],
  transferSyntaxes: DEFAULT_TRANSFER_SYNTAXES,
  transferSyntaxPolicy: 'proposal-order',
  maxPduLength: 16384,
};

function rq(over: Partial<AssociateRq> = {}): AssociateRq {
  return {
    type: 'A-ASSOCIATE-RQ',
    protocolVersion: 1,
    calledAeTitle: 'DICOM_ROUTER',
    callingAeTitle: 'MODALITY',
    applicationContext: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: CT, transferSyntaxes: [ILE, ELE] }],
    userInformation: { maxPduLength: 16352, implementationClassUid: '1.2.3', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
    ...over,
  };
}

test('accepts with the negotiated contexts and our max PDU and implementation identity', (t) => {
  const r = negotiate(rq(), policy);
  if (!r.accepted) return t.fail(r.why);
  t.deepEqual(r.ac.presentationContexts, [{ id: 1, result: 0, transferSyntax: ILE }]);
  t.is(r.ac.userInformation.maxPduLength, 16384);
  t.is(r.ac.userInformation.implementationClassUid, IMPLEMENTATION_CLASS_UID);
  t.deepEqual([...r.contexts.values()], [{ id: 1, abstractSyntax: CT, transferSyntax: ILE }]);
});

test('several called AE titles share one listener', (t) => {
  t.true(negotiate(rq({ calledAeTitle: 'ROUTER_B' }), policy).accepted);
});

test('reject reasons: 1/1/2, 1/1/7, 1/1/3', (t) => {
  const app = negotiate(rq({ applicationContext: '1.2.3' }), policy);
  t.like(app, { accepted: false, rj: { result: 1, source: 1, reason: 2 } });
  const called = negotiate(rq({ calledAeTitle: 'OTHER' }), policy);
  t.like(called, { accepted: false, rj: { result: 1, source: 1, reason: 7 } });
  const calling = negotiate(rq({ callingAeTitle: 'STRANGER' }), { ...policy, acceptCallingAeTitles: ['FRIEND'] });
  t.like(calling, { accepted: false, rj: { result: 1, source: 1, reason: 3 } });
  t.true(negotiate(rq({ callingAeTitle: 'FRIEND' }), { ...policy, acceptCallingAeTitles: ['FRIEND'] }).accepted);
});

test('per-context results: abstract syntax not supported (3), transfer syntaxes not supported (4)', (t) => {
  const r = negotiate(
    rq({
      presentationContexts: [
        { id: 1, abstractSyntax: '1.2.3.4.5.6', transferSyntaxes: [ILE] },
        { id: 3, abstractSyntax: CT, transferSyntaxes: [BZIP2_PRIVATE] },
        { id: 5, abstractSyntax: CT, transferSyntaxes: [BZIP2_PRIVATE, ELE] },
      ],
    }),
    policy,
  );
  if (!r.accepted) return t.fail();
  t.deepEqual(r.ac.presentationContexts.map((pc) => [pc.id, pc.result]), [[1, 3], [3, 4], [5, 0]]);
  t.is(r.ac.presentationContexts[2].transferSyntax, ELE);
});

test('several presentation contexts for one abstract syntax are each accepted', (t) => {
  const r = negotiate(
    rq({
      presentationContexts: [
        { id: 1, abstractSyntax: CT, transferSyntaxes: [JPEG_LOSSLESS_SV1] },
        { id: 3, abstractSyntax: CT, transferSyntaxes: [ELE] },
        { id: 5, abstractSyntax: CT, transferSyntaxes: [ILE] },
      ],
    }),
    policy,
  );
  if (!r.accepted) return t.fail();
  t.deepEqual([...r.contexts.values()].map((c) => c.transferSyntax), [JPEG_LOSSLESS_SV1, ELE, ILE]);
});

test('proposal-order takes the first proposed syntax we support', (t) => {
  t.deepEqual(selectTransferSyntax(CT, [BZIP2_PRIVATE, ILE, ELE], policy), { result: 0, transferSyntax: ILE });
  t.deepEqual(selectTransferSyntax(CT, [EBE, ELE], policy), { result: 0, transferSyntax: EBE });
});

test('prefer-explicit takes Explicit LE, else another explicit syntax, else Implicit LE', (t) => {
  const p = { ...policy, transferSyntaxPolicy: 'prefer-explicit' as const };
  t.deepEqual(selectTransferSyntax(CT, [ILE, ELE], p), { result: 0, transferSyntax: ELE });
  t.deepEqual(selectTransferSyntax(CT, [ILE, EBE], p), { result: 0, transferSyntax: EBE });
  t.deepEqual(selectTransferSyntax(CT, [ILE], p), { result: 0, transferSyntax: ILE });
});

test('a listener restricted to some syntaxes declines the others', (t) => {
  const p = { ...policy, transferSyntaxes: [ILE] };
  t.deepEqual(selectTransferSyntax(CT, [ELE, EBE], p).result, 4);
  t.deepEqual(selectTransferSyntax(CT, [ELE, ILE], p), { result: 0, transferSyntax: ILE });
});

test('role selection: SCU role echoed for SOP classes we accept, never the SCP role', (t) => {
  const r = negotiate(
    rq({
      userInformation: {
        ...rq().userInformation,
        roleSelections: [
          { sopClassUid: CT, scuRole: true, scpRole: true },
          { sopClassUid: '1.2.3.4', scuRole: true, scpRole: false },
        ],
        asyncOpsWindow: { invoked: 5, performed: 5 },
      },
    }),
    policy,
  );
  if (!r.accepted) return t.fail();
  t.deepEqual(r.ac.userInformation.roleSelections, [{ sopClassUid: CT, scuRole: true, scpRole: false }]);
  t.deepEqual(r.ac.userInformation.asyncOpsWindow, { invoked: 1, performed: 1 });
});

test('a storage commitment peer reporting: the Push Model class is accepted with its SCP role, other classes keep ours', (t) => {
  const SC = '1.2.840.10008.1.20.1';
  const proposal = rq({
    presentationContexts: [{ id: 1, abstractSyntax: SC, transferSyntaxes: [ILE] }, { id: 3, abstractSyntax: CT, transferSyntaxes: [ILE] }],
    userInformation: {
      maxPduLength: 16352, implementationClassUid: '1.2.3', sopClassExtended: [], sopClassCommonExtended: [],
      roleSelections: [{ sopClassUid: SC, scuRole: false, scpRole: true }, { sopClassUid: CT, scuRole: true, scpRole: true }],
    },
  });
  // A listener without storage commitment, to any other requester: the class is not offered.
  const plain = negotiate(proposal, policy);
  if (!plain.accepted) return t.fail(plain.why);
  t.is(plain.ac.presentationContexts[0].result, 3);
  const r = negotiate(proposal, withCommitmentReports(policy));
  if (!r.accepted) return t.fail(r.why);
  t.deepEqual(r.ac.presentationContexts.map((pc) => pc.result), [0, 0]);
  t.deepEqual(r.ac.userInformation.roleSelections, [{ sopClassUid: SC, scuRole: false, scpRole: true }, { sopClassUid: CT, scuRole: true, scpRole: false }]);
});
