// The DICOM Upper Layer PDUs of PS3.8 section 9.3, as plain data.
// The codec (pdu.ts) turns these into bytes and back; the association machine
// (machines/association.machine.ts) only ever sees these shapes.

export const PduType = {
  ASSOCIATE_RQ: 0x01,
  ASSOCIATE_AC: 0x02,
  ASSOCIATE_RJ: 0x03,
  P_DATA_TF: 0x04,
  RELEASE_RQ: 0x05,
  RELEASE_RP: 0x06,
  ABORT: 0x07,
} as const;

/** PS3.8 9.3.2.2 presentation context item (RQ), one abstract syntax and its proposed transfer syntaxes. */
export type PresentationContextRq = {
  id: number; // odd, 1..255
  abstractSyntax: string;
  transferSyntaxes: string[];
};

/** PS3.8 Table 9-18 result/reason: 0 acceptance, 1 user-rejection, 2 no-reason (provider rejection),
 *  3 abstract-syntax-not-supported, 4 transfer-syntaxes-not-supported. */
export type PresentationContextResult = 0 | 1 | 2 | 3 | 4;

export type PresentationContextAc = {
  id: number;
  result: PresentationContextResult;
  /** Meaningful only when result is 0; otherwise the encoded value is ignored by the peer. */
  transferSyntax: string;
};

/** PS3.7 D.3.3.4 SCP/SCU role selection sub-item (0x54). */
export type RoleSelection = { sopClassUid: string; scuRole: boolean; scpRole: boolean };

/** PS3.7 D.3.3.5 SOP class extended negotiation sub-item (0x56): opaque service-class application information. */
export type SopClassExtendedNegotiation = { sopClassUid: string; info: Uint8Array };

/** PS3.7 D.3.3.6 SOP class common extended negotiation sub-item (0x57). */
export type SopClassCommonExtendedNegotiation = {
  sopClassUid: string;
  serviceClassUid: string;
  relatedGeneralSopClassUids: string[];
};

/** PS3.7 D.3.3.7.1 user identity negotiation (RQ, 0x58). Type 1 username, 2 username+passcode,
 *  3 Kerberos, 4 SAML, 5 JWT. */
export type UserIdentityRq = {
  identityType: 1 | 2 | 3 | 4 | 5;
  positiveResponseRequested: boolean;
  primaryField: Uint8Array;
  secondaryField: Uint8Array; // empty unless identityType is 2
};

/** PS3.7 D.3.3.7.2 user identity negotiation (AC, 0x59). */
export type UserIdentityAc = { serverResponse: Uint8Array };

/** PS3.8 9.3.2.3 / PS3.7 Annex D user information item (0x50) and its sub-items. */
export type UserInformation = {
  /** Maximum length received (0x51). 0 means "no limit" per PS3.8 D.1. */
  maxPduLength: number;
  implementationClassUid: string; // 0x52
  implementationVersionName?: string; // 0x55
  /** Asynchronous operations window (0x53). */
  asyncOpsWindow?: { invoked: number; performed: number };
  roleSelections: RoleSelection[]; // 0x54
  sopClassExtended: SopClassExtendedNegotiation[]; // 0x56
  sopClassCommonExtended: SopClassCommonExtendedNegotiation[]; // 0x57 (RQ only)
  userIdentityRq?: UserIdentityRq; // 0x58 (RQ only)
  userIdentityAc?: UserIdentityAc; // 0x59 (AC only)
};

export type AssociateRq = {
  type: 'A-ASSOCIATE-RQ';
  protocolVersion: number; // bit 0 set = version 1
  calledAeTitle: string; // trimmed of padding spaces
  callingAeTitle: string;
  applicationContext: string;
  presentationContexts: PresentationContextRq[];
  userInformation: UserInformation;
};

export type AssociateAc = {
  type: 'A-ASSOCIATE-AC';
  protocolVersion: number;
  calledAeTitle: string; // echoed from the RQ (PS3.8: not tested by the receiver)
  callingAeTitle: string;
  applicationContext: string;
  presentationContexts: PresentationContextAc[];
  userInformation: UserInformation;
};

/** PS3.8 Table 9-21. result: 1 rejected-permanent, 2 rejected-transient.
 *  source: 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
 *  reason depends on source (e.g. 1/1/3 calling AE title not recognized, 2/3/2 local limit exceeded). */
export type AssociateRj = { type: 'A-ASSOCIATE-RJ'; result: 1 | 2; source: 1 | 2 | 3; reason: number };

/** One presentation data value item (PS3.8 9.3.5.1) with its message control header (Annex E.2). */
export type Pdv = {
  contextId: number;
  isCommand: boolean; // bit 0 of the control header
  isLast: boolean; // bit 1 of the control header
  data: Uint8Array;
};

export type PDataTf = { type: 'P-DATA-TF'; pdvs: Pdv[] };
export type ReleaseRq = { type: 'A-RELEASE-RQ' };
export type ReleaseRp = { type: 'A-RELEASE-RP' };

/** PS3.8 Table 9-26. source: 0 service-user, 2 service-provider.
 *  reason (provider only): 0 not specified, 1 unrecognized PDU, 2 unexpected PDU,
 *  4 unrecognized PDU parameter, 5 unexpected PDU parameter, 6 invalid PDU parameter value. */
export type Abort = { type: 'A-ABORT'; source: 0 | 1 | 2; reason: number };

export type Pdu = AssociateRq | AssociateAc | AssociateRj | PDataTf | ReleaseRq | ReleaseRp | Abort;

/** A-ABORT reasons from the provider (PS3.8 Table 9-26), used by decode errors. */
export const AbortReason = {
  NOT_SPECIFIED: 0,
  UNRECOGNIZED_PDU: 1,
  UNEXPECTED_PDU: 2,
  UNRECOGNIZED_PDU_PARAMETER: 4,
  UNEXPECTED_PDU_PARAMETER: 5,
  INVALID_PDU_PARAMETER_VALUE: 6,
} as const;

export const DICOM_APPLICATION_CONTEXT = '1.2.840.10008.3.1.1.1';
