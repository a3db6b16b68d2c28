// fast-check generators of valid PDUs (as the decoder returns them) shared by the PDU codec and framer tests.
import fc from 'fast-check';
import type {
  Abort, AssociateAc, AssociateRj, AssociateRq, PDataTf, Pdu, PresentationContextAc, PresentationContextRq,
  UserInformation,
} from '../../protocol/pdu.types.ts';

const uidComponent = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 99999 }));
export const uidArb: fc.Arbitrary<string> = fc
  .array(uidComponent, { minLength: 1, maxLength: 12 })
  .map((c) => c.join('.'))
  .filter((u) => u.length <= 64);

// AE title characters: printable ASCII without backslash (PS3.5 AE VR); decoded titles are trimmed.
const aeChars = [...Array(0x7f - 0x20).keys()].map((i) => String.fromCharCode(0x20 + i)).filter((c) => c !== '\\');
export const aeArb: fc.Arbitrary<string> = fc
  .array(fc.constantFrom(...aeChars), { minLength: 1, maxLength: 16 })
  .map((a) => a.join('').trim())
  .filter((s) => s.length > 0);

const nameChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-'.split('');
const versionNameArb = fc.array(fc.constantFrom(...nameChars), { minLength: 1, maxLength: 16 }).map((a) => a.join(''));
const bytesArb = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });
const contextIdArb = fc.integer({ min: 0, max: 127 }).map((i) => 2 * i + 1);

export const userInformationArb: fc.Arbitrary<UserInformation> = fc.record(
  {
    maxPduLength: fc.integer({ min: 0, max: 0xffffffff }),
    implementationClassUid: fc.oneof({ weight: 5, arbitrary: uidArb }, { weight: 1, arbitrary: fc.constant('') }),
    implementationVersionName: versionNameArb,
    asyncOpsWindow: fc.record({ invoked: fc.integer({ min: 0, max: 0xffff }), performed: fc.integer({ min: 0, max: 0xffff }) }),
    roleSelections: fc.array(fc.record({ sopClassUid: uidArb, scuRole: fc.boolean(), scpRole: fc.boolean() }), { maxLength: 3 }),
    sopClassExtended: fc.array(fc.record({ sopClassUid: uidArb, info: bytesArb(32) }), { maxLength: 2 }),
    sopClassCommonExtended: fc.array(
      fc.record({ sopClassUid: uidArb, serviceClassUid: uidArb, relatedGeneralSopClassUids: fc.array(uidArb, { maxLength: 3 }) }),
      { maxLength: 2 },
    ),
    userIdentityRq: fc.record({
      identityType: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const, 5 as const),
      positiveResponseRequested: fc.boolean(),
      primaryField: bytesArb(40),
      secondaryField: bytesArb(40),
    }),
    userIdentityAc: fc.record({ serverResponse: bytesArb(40) }),
  },
  { requiredKeys: ['maxPduLength', 'implementationClassUid', 'roleSelections', 'sopClassExtended', 'sopClassCommonExtended'] },
);

const pcRqArb = (id: number): fc.Arbitrary<PresentationContextRq> =>
  fc.record({ id: fc.constant(id), abstractSyntax: uidArb, transferSyntaxes: fc.array(uidArb, { minLength: 1, maxLength: 3 }) });

const pcAcArb = (id: number): fc.Arbitrary<PresentationContextAc> =>
  fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const).chain((result) =>
    fc.record({
      id: fc.constant(id),
      result: fc.constant(result),
      // A non-accepted context's transfer syntax is not significant; empty is allowed then.
      transferSyntax: result === 0 ? uidArb : fc.oneof(uidArb, fc.constant('')),
    }));

const idsArb = (minLength: number): fc.Arbitrary<number[]> => fc.uniqueArray(contextIdArb, { minLength, maxLength: 5 });

export const associateRqArb: fc.Arbitrary<AssociateRq> = fc.record({
  type: fc.constant('A-ASSOCIATE-RQ' as const),
  protocolVersion: fc.integer({ min: 0, max: 0xffff }),
  calledAeTitle: aeArb,
  callingAeTitle: aeArb,
  applicationContext: uidArb,
  presentationContexts: idsArb(1).chain((ids) => fc.tuple(...ids.map(pcRqArb))),
  userInformation: userInformationArb,
});

export const associateAcArb: fc.Arbitrary<AssociateAc> = fc.record({
  type: fc.constant('A-ASSOCIATE-AC' as const),
  protocolVersion: fc.integer({ min: 0, max: 0xffff }),
  calledAeTitle: aeArb,
  callingAeTitle: aeArb,
  applicationContext: uidArb,
  presentationContexts: idsArb(0).chain((ids) => (ids.length ? fc.tuple(...ids.map(pcAcArb)) : fc.constant([]))),
  userInformation: userInformationArb,
});

export const associateRjArb: fc.Arbitrary<AssociateRj> = fc.record({
  type: fc.constant('A-ASSOCIATE-RJ' as const),
  result: fc.constantFrom(1 as const, 2 as const),
  source: fc.constantFrom(1 as const, 2 as const, 3 as const),
  reason: fc.integer({ min: 0, max: 255 }),
});

export const pDataTfArb: fc.Arbitrary<PDataTf> = fc.record({
  type: fc.constant('P-DATA-TF' as const),
  pdvs: fc.array(
    fc.record({ contextId: contextIdArb, isCommand: fc.boolean(), isLast: fc.boolean(), data: bytesArb(200) }),
    { minLength: 1, maxLength: 4 },
  ),
});

export const abortArb: fc.Arbitrary<Abort> = fc.record({
  type: fc.constant('A-ABORT' as const),
  source: fc.constantFrom(0 as const, 1 as const, 2 as const),
  reason: fc.integer({ min: 0, max: 255 }),
});

export const pduArb: fc.Arbitrary<Pdu> = fc.oneof(
  associateRqArb, associateAcArb, associateRjArb, pDataTfArb, abortArb,
  fc.constant({ type: 'A-RELEASE-RQ' as const }), fc.constant({ type: 'A-RELEASE-RP' as const }),
);

/** Plain, comparable form: byte arrays become hex strings (Buffer and Uint8Array views compare equal). */
export function norm(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  if (Array.isArray(value)) return value.map(norm);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, norm(v)]));
  }
  return value;
}
