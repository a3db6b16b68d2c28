// Association acceptance as the service-user (PS3.8 7.1.1, PS3.7 Annex D): which A-ASSOCIATE-RQ
// we accept, with which presentation contexts and transfer syntaxes, and the exact A-ASSOCIATE-RJ
// otherwise. Pure: the listener supplies its policy, this answers.
import type {
  AssociateAc,
  AssociateRj,
  AssociateRq,
  PresentationContextAc,
  PresentationContextResult,
  RoleSelection,
} from './pdu.types.ts';
import { DICOM_APPLICATION_CONTEXT } from './pdu.types.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE, PATIENT_ROOT_FIND, PATIENT_ROOT_GET, PATIENT_ROOT_MOVE, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS, STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE, transferSyntax } from './uids.ts';

export type TransferSyntaxPolicy = 'proposal-order' | 'prefer-explicit';

export type AcceptorPolicy = {
  aeTitles: string[];
  /** Empty means any calling AE title. */
  acceptCallingAeTitles: string[];
  sopClasses: string[];
  transferSyntaxes: string[];
  transferSyntaxPolicy: TransferSyntaxPolicy;
  maxPduLength: number;
  /**
   * SOP classes for which the requestor may take the SCP role: on a Q/R listener every class it
   * accepts (C-GET sub-operations come back to it), for a Storage Commitment peer the Push Model (its
   * N-EVENT-REPORT). Absent: none.
   */
  requestorScpRoleFor?: string[];
};

/** An accepted presentation context: what the DIMSE layer needs to know about it. */
export type AcceptedContext = { id: number; abstractSyntax: string; transferSyntax: string };

export type NegotiationResult =
  | { accepted: true; ac: AssociateAc; contexts: Map<number, AcceptedContext> }
  | { accepted: false; rj: AssociateRj; why: string };


/** PS3.8 Table 9-21 codes used by the acceptor. */
export const Reject = {
  applicationContextNotSupported: { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 2 },
  callingAeNotRecognized: { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 3 },
  calledAeNotRecognized: { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 7 },
  protocolVersionNotSupported: { type: 'A-ASSOCIATE-RJ', result: 1, source: 2, reason: 2 },
  // Local limit exceeded is a presentation-related provider reason (source 3), transient.
  localLimitExceeded: { type: 'A-ASSOCIATE-RJ', result: 2, source: 3, reason: 2 },
} as const satisfies Record<string, AssociateRj>;

export function negotiate(rq: AssociateRq, policy: AcceptorPolicy): NegotiationResult {
  if (rq.applicationContext !== DICOM_APPLICATION_CONTEXT) {
    return reject(Reject.applicationContextNotSupported, `application context ${rq.applicationContext} not supported`);
  }
  if (!policy.aeTitles.includes(rq.calledAeTitle)) {
    return reject(Reject.calledAeNotRecognized, `called AE title '${rq.calledAeTitle}' is not one of ${policy.aeTitles.join(', ')}`);
  }
  if (policy.acceptCallingAeTitles.length > 0 && !policy.acceptCallingAeTitles.includes(rq.callingAeTitle)) {
    return reject(Reject.callingAeNotRecognized, `calling AE title '${rq.callingAeTitle}' is not allowed`);
  }

  const contexts = new Map<number, AcceptedContext>();
  const results: PresentationContextAc[] = rq.presentationContexts.map((pc) => {
    const result = selectTransferSyntax(pc.abstractSyntax, pc.transferSyntaxes, policy);
    if (result.result === 0) contexts.set(pc.id, { id: pc.id, abstractSyntax: pc.abstractSyntax, transferSyntax: result.transferSyntax });
    return { id: pc.id, result: result.result, transferSyntax: result.transferSyntax };
  });

  const proposed = rq.userInformation;
  const roleSelections: RoleSelection[] = proposed.roleSelections
    .filter((r) => policy.sopClasses.includes(r.sopClassUid))
    // We act as SCP for what we accept; the requestor acts as SCP only where the policy lets it: to
    // receive our C-STOREs where a C-GET needs it, on a Q/R listener (PS3.4 C.4.3, PS3.7 D.3.3.4), and
    // a storage commitment peer the router asked, to report (PS3.4 J.3.3).
    .map((r) => ({ sopClassUid: r.sopClassUid, scuRole: r.scuRole, scpRole: policy.requestorScpRoleFor?.includes(r.sopClassUid) === true && r.scpRole }));

  const ac: AssociateAc = {
    type: 'A-ASSOCIATE-AC',
    protocolVersion: 1,
    calledAeTitle: rq.calledAeTitle,
    callingAeTitle: rq.callingAeTitle,
    applicationContext: DICOM_APPLICATION_CONTEXT,
    presentationContexts: results,
    userInformation: {
      maxPduLength: policy.maxPduLength,
      implementationClassUid: IMPLEMENTATION_CLASS_UID,
      implementationVersionName: IMPLEMENTATION_VERSION_NAME,
      // Operations are performed one at a time (PS3.7 D.3.3.3: a window of 1/1 is the default).
      ...(proposed.asyncOpsWindow ? { asyncOpsWindow: { invoked: 1, performed: 1 } } : {}),
      roleSelections,
      sopClassExtended: [],
      sopClassCommonExtended: [],
    },
  };
  return { accepted: true, ac, contexts };
}

/**
 * The policy for a Storage Commitment peer the router asks (its calling AE title is a peer's with
 * storageCommitment enabled): the Push Model SOP class is accepted with the peer in SCP role, so its
 * N-EVENT-REPORT comes in on a new association, whether or not the listener performs commitment itself.
 */
export function withCommitmentReports(policy: AcceptorPolicy): AcceptorPolicy {
  return {
    ...policy,
    sopClasses: policy.sopClasses.includes(STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS) ? policy.sopClasses : [...policy.sopClasses, STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS],
    requestorScpRoleFor: [...(policy.requestorScpRoleFor ?? []), STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS],
  };
}

function reject(rj: AssociateRj, why: string): NegotiationResult {
  return { accepted: false, rj: { ...rj }, why };
}

const QR_SOP_CLASSES = new Set([PATIENT_ROOT_FIND, PATIENT_ROOT_MOVE, PATIENT_ROOT_GET, STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET]);

/** PS3.8 Table 9-18 result for one presentation context, with the chosen transfer syntax. */
export function selectTransferSyntax(
  abstractSyntax: string,
  proposed: string[],
  policy: Pick<AcceptorPolicy, 'sopClasses' | 'transferSyntaxes' | 'transferSyntaxPolicy'>,
): { result: PresentationContextResult; transferSyntax: string } {
  if (!policy.sopClasses.includes(abstractSyntax)) return { result: 3, transferSyntax: proposed[0] ?? IMPLICIT_LE };
  // Q/R identifiers are read and written by the router itself: uncompressed Little Endian only.
  const accepted = QR_SOP_CLASSES.has(abstractSyntax) ? policy.transferSyntaxes.filter((ts) => ts === EXPLICIT_LE || ts === IMPLICIT_LE) : policy.transferSyntaxes;
  const supported = proposed.filter((ts) => accepted.includes(ts));
  if (supported.length === 0) return { result: 4, transferSyntax: proposed[0] ?? IMPLICIT_LE };
  if (policy.transferSyntaxPolicy === 'prefer-explicit') {
    const explicit = supported.includes(EXPLICIT_LE) ? EXPLICIT_LE : supported.find((ts) => transferSyntax(ts)?.explicitVr);
    if (explicit) return { result: 0, transferSyntax: explicit };
    if (supported.includes(IMPLICIT_LE)) return { result: 0, transferSyntax: IMPLICIT_LE };
  }
  return { result: 0, transferSyntax: supported[0] };
}
