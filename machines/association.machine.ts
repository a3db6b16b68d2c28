// The DICOM Upper Layer protocol machine of PS3.8 9.2 (states Sta1–Sta13, events Evt1–Evt19,
// actions of Tables 9-6..9-9, transitions of Table 9-10), for both the association-requestor
// and the association-acceptor. Pure: every effect is an emitted event (OPEN_TRANSPORT,
// SEND_PDU, CLOSE_TRANSPORT, *_INDICATION, *_CONFIRMED …) that the socket actor and the
// DIMSE layer act on via `actor.on(type, handler)`.
//
// ARTIM (PS3.8 9.1.5) runs exactly in Sta2 and Sta13: every transition into those states is one
// that starts it (AE-5 → Sta2; AE-6 reject, AE-8, AR-4, AA-1, AA-8 → Sta13), and every
// transition out of them stops it (AE-6, AA-2, AA-5, AR-5). So it is an XState `after` delay on
// those two states: entering starts it, leaving cancels it. The in-state transitions of Sta13
// (AA-6, AA-7) are targetless, so they neither restart nor stop it. Its expiry (Evt18) runs the
// same transition as an ARTIM_EXPIRED event sent from outside.
//
// Blank cells of Table 9-10 (an event that cannot occur in that state) have no transition:
// XState ignores the event, the state is unchanged and nothing is emitted.
import { assertEvent, assign, emit, enqueueActions, setup, stopChild } from 'xstate';
import type { Abort, AssociateAc, AssociateRj, AssociateRq, PDataTf, Pdu } from '../protocol/pdu.types.ts';
import type { Command } from '../protocol/dimse.ts';
import { cEchoScpMachine } from './dimse/c-echo-scp.machine.ts';
import { cStoreScpMachine } from './dimse/c-store-scp.machine.ts';
import { nActionScpMachine } from './dimse/n-action-scp.machine.ts';
import { nActionScuMachine } from './dimse/n-action-scu.machine.ts';
import { nEventReportScpMachine } from './dimse/n-event-report-scp.machine.ts';
import type { DatasetSource, DimseInput, DimseOutcome, DimseToAssociation } from './dimse/dimse.events.ts';
import { refusedRequestMachine } from './dimse/refused-request.machine.ts';
import { scuRequestMachine } from './dimse/scu-request.machine.ts';
import { cFindScuMachine } from './dimse/c-find-scu.machine.ts';
import { cMoveScuMachine } from './dimse/c-move-scu.machine.ts';
import { cFindScpMachine } from './dimse/c-find-scp.machine.ts';
import { cMoveScpMachine } from './dimse/c-move-scp.machine.ts';

export type DulStateId =
  | 'Sta1' | 'Sta2' | 'Sta3' | 'Sta4' | 'Sta5' | 'Sta6' | 'Sta7'
  | 'Sta8' | 'Sta9' | 'Sta10' | 'Sta11' | 'Sta12' | 'Sta13';

export type DulEvent =
  | { type: 'A_ASSOCIATE_REQUESTED'; rq: AssociateRq } // Evt1  A-ASSOCIATE request (local user)
  | { type: 'TRANSPORT_CONNECTED' } // Evt2  transport connect confirmation
  | { type: 'ASSOCIATE_AC_RECEIVED'; pdu: AssociateAc } // Evt3
  | { type: 'ASSOCIATE_RJ_RECEIVED'; pdu: AssociateRj } // Evt4
  | { type: 'TRANSPORT_ACCEPTED' } // Evt5  transport connection indication
  | { type: 'ASSOCIATE_RQ_RECEIVED'; pdu: AssociateRq } // Evt6
  | { type: 'A_ASSOCIATE_ACCEPT_REQUESTED'; ac: AssociateAc } // Evt7  A-ASSOCIATE response (accept)
  | { type: 'A_ASSOCIATE_REJECT_REQUESTED'; rj: AssociateRj } // Evt8  A-ASSOCIATE response (reject)
  | { type: 'P_DATA_REQUESTED'; pdu: PDataTf } // Evt9
  | { type: 'P_DATA_TF_RECEIVED'; pdu: PDataTf } // Evt10
  | { type: 'A_RELEASE_REQUESTED' } // Evt11
  | { type: 'RELEASE_RQ_RECEIVED' } // Evt12
  | { type: 'RELEASE_RP_RECEIVED' } // Evt13
  | { type: 'A_RELEASE_RESPONSE_REQUESTED' } // Evt14
  | { type: 'A_ABORT_REQUESTED'; reason?: number } // Evt15
  | { type: 'ABORT_RECEIVED'; pdu: Abort } // Evt16
  | { type: 'TRANSPORT_CLOSED' } // Evt17
  | { type: 'ARTIM_EXPIRED' } // Evt18 (also raised internally by the ARTIM delay)
  | { type: 'INVALID_PDU_RECEIVED'; reason: number; detail: string }; // Evt19

export type DulEventType = DulEvent['type'];

/** The DIMSE transaction machines an association spawns, one per transaction (PS3.7 9). */
export type DimseService = 'cEchoScp' | 'cStoreScp' | 'cFindScp' | 'cMoveScp' | 'cGetScp' | 'nActionScp' | 'nEventReportScp' | 'refusedRequest' | ScuService;
/** The SCU transactions: one request/response, or C-FIND / C-MOVE with pending responses (PS3.7 9.1.2, 9.1.4). */
export type ScuService = 'scuRequest' | 'cFindScu' | 'cMoveScu' | 'nActionScu';

/** The DIMSE layer above the DUL: transactions are spawned here, keyed `dimse-<Message ID>`. */
export type DimseEvent =
  | { type: 'DIMSE_REQUEST_RECEIVED'; service: Exclude<DimseService, ScuService>; input: DimseInput } // SCP
  | { type: 'DIMSE_REQUEST_STARTED'; service: ScuService; input: DimseInput } // SCU
  | { type: 'DIMSE_RESPONSE_RECEIVED'; command: Command; dataset?: Uint8Array }
  | DimseToAssociation;

/** XState's event when a transaction machine reaches a final state: its output is the outcome. */
export type TransactionDone = { type: `xstate.done.actor.dimse-${number}`; actorId: string; output: DimseOutcome };

export type AssociationEvent = DulEvent | DimseEvent | TransactionDone;

const isTransactionDone = (event: AssociationEvent): event is TransactionDone => event.type.startsWith('xstate.done.actor.dimse-');

export const transactionId = (messageId: number) => `dimse-${messageId}`;

/** Everything the machine asks of the outside world. */
export type DulOutput =
  | { type: 'OPEN_TRANSPORT' } // AE-1
  | { type: 'SEND_PDU'; pdu: Pdu }
  | { type: 'CLOSE_TRANSPORT' }
  | { type: 'ASSOCIATE_INDICATION'; rq: AssociateRq } // AE-6 (acceptable to the provider)
  | { type: 'ASSOCIATE_CONFIRMED'; ac: AssociateAc } // AE-3
  | { type: 'ASSOCIATE_REJECTED'; rj: AssociateRj } // AE-4
  | { type: 'P_DATA_INDICATION'; pdu: PDataTf } // DT-2, AR-6
  | { type: 'RELEASE_INDICATION' } // AR-2
  | { type: 'RELEASE_CONFIRMED' } // AR-3, AR-10
  | { type: 'RELEASE_COLLISION_INDICATION' } // AR-8
  | {
      // AA-3 (peer A-ABORT: 'peer' if its source is the service-user, else 'provider'),
      // AA-4 (transport closed: A-P-ABORT), AA-8 (protocol error: A-P-ABORT).
      type: 'ABORT_INDICATION';
      source: 'peer' | 'provider';
      abortSource?: number; // the A-ABORT PDU source field, when a PDU was involved
      reason: number;
      detail?: string;
    }
  | { type: 'DIMSE_SEND'; contextId: number; command: Command; dataset?: DatasetSource }
  | { type: 'DIMSE_COMPLETED'; outcome: DimseOutcome };

export type DulRole = 'requestor' | 'acceptor';

/**
 * What went over this association's transport, counted by the socket actor as it moves the bytes
 * (P-DATA-TF in a data-transfer state never becomes an event, so no transition could count it).
 * The one object is kept for the association's life and only ever incremented: the metrics and the
 * inspector read it from the snapshot.
 */
export type AssociationTraffic = {
  pdusReceived: number;
  pdusSent: number;
  /** P-DATA-TF PDUs on the wire, 6-byte header included. */
  pDataBytesReceived: number;
  pDataBytesSent: number;
};

export const newTraffic = (): AssociationTraffic => ({ pdusReceived: 0, pdusSent: 0, pDataBytesReceived: 0, pDataBytesSent: 0 });

export type DulContext = {
  artimTimeoutMs: number;
  role: DulRole | undefined;
  associateRq?: AssociateRq;
  associateAc?: AssociateAc;
  traffic: AssociationTraffic;
};

export type DulInput = { artimTimeoutMs: number; dimseTimeoutMs?: number };

/** PS3.8 Table 9-26 reason 2: unexpected PDU. */
const UNEXPECTED_PDU = 2;

const PDU_NAME: Partial<Record<string, string>> = {
  ASSOCIATE_AC_RECEIVED: 'A-ASSOCIATE-AC',
  ASSOCIATE_RJ_RECEIVED: 'A-ASSOCIATE-RJ',
  ASSOCIATE_RQ_RECEIVED: 'A-ASSOCIATE-RQ',
  P_DATA_TF_RECEIVED: 'P-DATA-TF',
  RELEASE_RQ_RECEIVED: 'A-RELEASE-RQ',
  RELEASE_RP_RECEIVED: 'A-RELEASE-RP',
};

/** Reason and text for a provider-initiated abort caused by `event` (AA-1 in Sta2, AA-7, AA-8). */
function protocolError(event: AssociationEvent): { reason: number; detail: string } {
  if (event.type === 'INVALID_PDU_RECEIVED') return { reason: event.reason, detail: event.detail };
  return { reason: UNEXPECTED_PDU, detail: `unexpected ${PDU_NAME[event.type] ?? event.type} PDU` };
}

const dul = setup({
  types: {
    context: {} as DulContext,
    events: {} as AssociationEvent,
    input: {} as DulInput,
    emitted: {} as DulOutput,
  },
  actors: {
    cEchoScp: cEchoScpMachine,
    cStoreScp: cStoreScpMachine,
    cFindScp: cFindScpMachine,
    cMoveScp: cMoveScpMachine,
    // C-GET has C-MOVE's responses (pending counts, final status); its sub-operations go back on this association.
    cGetScp: cMoveScpMachine,
    nActionScp: nActionScpMachine,
    nEventReportScp: nEventReportScpMachine,
    refusedRequest: refusedRequestMachine,
    scuRequest: scuRequestMachine,
    cFindScu: cFindScuMachine,
    cMoveScu: cMoveScuMachine,
    nActionScu: nActionScuMachine,
  },
  actions: {
    spawnTransaction: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, ['DIMSE_REQUEST_RECEIVED', 'DIMSE_REQUEST_STARTED']);
      enqueue.spawnChild(event.service, { id: transactionId(event.input.messageId), input: event.input });
    }),
    routeResponse: enqueueActions(({ event, enqueue, self }) => {
      assertEvent(event, 'DIMSE_RESPONSE_RECEIVED');
      const id = transactionId(event.command.MessageIDBeingRespondedTo ?? -1);
      // A response nobody asked for is dropped (and logged by the actor, which sees it too).
      if (self.getSnapshot().children[id]) enqueue.sendTo(id, { type: 'RESPONSE_RECEIVED', command: event.command, dataset: event.dataset });
    }),
    sendDimseMessage: emit(({ event }) => {
      assertEvent(event, 'DIMSE_MESSAGE_READY');
      return { type: 'DIMSE_SEND' as const, contextId: event.contextId, command: event.command, dataset: event.dataset };
    }),
    reportTransaction: emit(({ event }) => {
      if (!isTransactionDone(event)) throw new Error(`expected a transaction's done event, got ${event.type}`);
      return { type: 'DIMSE_COMPLETED' as const, outcome: event.output };
    }),
    // A finished transaction leaves the tree (and the inspector) at once.
    removeTransaction: stopChild(({ event }) => {
      if (!isTransactionDone(event)) throw new Error(`expected a transaction's done event, got ${event.type}`);
      return event.actorId;
    }),
    recordRequestorRole: assign(({ event }) => {
      assertEvent(event, 'A_ASSOCIATE_REQUESTED');
      return { role: 'requestor' as const, associateRq: event.rq, associateAc: undefined };
    }),
    recordAcceptorRole: assign({ role: 'acceptor' as const, associateRq: undefined, associateAc: undefined }),
    recordAssociateRq: assign(({ event }) => {
      assertEvent(event, 'ASSOCIATE_RQ_RECEIVED');
      return { associateRq: event.pdu };
    }),
    recordAssociateAc: assign(({ event }) => {
      assertEvent(event, ['ASSOCIATE_AC_RECEIVED', 'A_ASSOCIATE_ACCEPT_REQUESTED']);
      return { associateAc: event.type === 'ASSOCIATE_AC_RECEIVED' ? event.pdu : event.ac };
    }),
    openTransport: emit({ type: 'OPEN_TRANSPORT' as const }),
    closeTransport: emit({ type: 'CLOSE_TRANSPORT' as const }),
    sendAssociateRq: emit(({ context }) => {
      if (!context.associateRq) throw new Error('AE-2 without an A-ASSOCIATE request');
      return { type: 'SEND_PDU' as const, pdu: context.associateRq };
    }),
    indicateAssociateConfirmed: emit(({ event }) => {
      assertEvent(event, 'ASSOCIATE_AC_RECEIVED');
      return { type: 'ASSOCIATE_CONFIRMED' as const, ac: event.pdu };
    }),
    indicateAssociateRejected: emit(({ event }) => {
      assertEvent(event, 'ASSOCIATE_RJ_RECEIVED');
      return { type: 'ASSOCIATE_REJECTED' as const, rj: event.pdu };
    }),
    indicateAssociateRequest: emit(({ event }) => {
      assertEvent(event, 'ASSOCIATE_RQ_RECEIVED');
      return { type: 'ASSOCIATE_INDICATION' as const, rq: event.pdu };
    }),
    // AE-6 "not acceptable by the service-provider": only the protocol version is the
    // provider's to judge; PS3.8 Table 9-21 result 1 (permanent), source 2 (ACSE), reason 2.
    sendProtocolVersionReject: emit({
      type: 'SEND_PDU' as const,
      pdu: { type: 'A-ASSOCIATE-RJ', result: 1, source: 2, reason: 2 } satisfies AssociateRj,
    }),
    sendAssociateAc: emit(({ event }) => {
      assertEvent(event, 'A_ASSOCIATE_ACCEPT_REQUESTED');
      return { type: 'SEND_PDU' as const, pdu: event.ac };
    }),
    sendAssociateRj: emit(({ event }) => {
      assertEvent(event, 'A_ASSOCIATE_REJECT_REQUESTED');
      return { type: 'SEND_PDU' as const, pdu: event.rj };
    }),
    sendPData: emit(({ event }) => {
      assertEvent(event, 'P_DATA_REQUESTED');
      return { type: 'SEND_PDU' as const, pdu: event.pdu };
    }),
    indicatePData: emit(({ event }) => {
      assertEvent(event, 'P_DATA_TF_RECEIVED');
      return { type: 'P_DATA_INDICATION' as const, pdu: event.pdu };
    }),
    sendReleaseRq: emit({ type: 'SEND_PDU' as const, pdu: { type: 'A-RELEASE-RQ' } satisfies Pdu }),
    sendReleaseRp: emit({ type: 'SEND_PDU' as const, pdu: { type: 'A-RELEASE-RP' } satisfies Pdu }),
    indicateRelease: emit({ type: 'RELEASE_INDICATION' as const }),
    confirmRelease: emit({ type: 'RELEASE_CONFIRMED' as const }),
    indicateReleaseCollision: emit({ type: 'RELEASE_COLLISION_INDICATION' as const }),
    // AA-1, AA-7, AA-8: an A-ABORT PDU. Source 0 (service-user) when the local user asked for it
    // (Evt15); otherwise it is a protocol error detected by this provider: source 2, with the
    // decoder's reason for an invalid PDU (Evt19), else 2 "unexpected PDU" (PS3.8 Table 9-26).
    sendAbort: emit(({ event }) => {
      const pdu: Abort =
        event.type === 'A_ABORT_REQUESTED'
          ? { type: 'A-ABORT', source: 0, reason: event.reason ?? 0 }
          : { type: 'A-ABORT', source: 2, reason: protocolError(event).reason };
      return { type: 'SEND_PDU' as const, pdu };
    }),
    // AA-3: A-ABORT indication if the peer's service-user aborted, else A-P-ABORT.
    indicatePeerAbort: emit(({ event }) => {
      assertEvent(event, 'ABORT_RECEIVED');
      return {
        type: 'ABORT_INDICATION' as const,
        source: event.pdu.source === 0 ? ('peer' as const) : ('provider' as const),
        abortSource: event.pdu.source,
        reason: event.pdu.reason,
      };
    }),
    // AA-4: A-P-ABORT indication, the transport went away under us (reason-not-specified).
    indicateTransportClosed: emit({
      type: 'ABORT_INDICATION' as const,
      source: 'provider' as const,
      reason: 0,
      detail: 'transport connection closed',
    }),
    // AA-8: A-P-ABORT indication for the protocol error we just aborted on.
    indicateProviderAbort: emit(({ event }) => ({
      type: 'ABORT_INDICATION' as const,
      source: 'provider' as const,
      abortSource: 2,
      ...protocolError(event),
    })),
  },
  guards: {
    // PS3.8 9.3.2: a receiver implementing only version 1 shall only test that bit 0 is set.
    protocolVersionSupported: ({ event }) =>
      event.type === 'ASSOCIATE_RQ_RECEIVED' && (event.pdu.protocolVersion & 1) === 1,
    isRequestor: ({ context }) => context.role === 'requestor',
    transactionDone: ({ event }) => isTransactionDone(event),
  },
  delays: {
    ARTIM: ({ context }) => context.artimTimeoutMs,
  },
});

type DulTransition = {
  target?: DulStateId;
  guard?: 'protocolVersionSupported' | 'isRequestor';
  actions?: ActionName[];
  description: string;
};
type ActionName =
  | 'recordRequestorRole' | 'recordAcceptorRole' | 'recordAssociateRq' | 'recordAssociateAc'
  | 'openTransport' | 'closeTransport' | 'sendAssociateRq' | 'indicateAssociateConfirmed'
  | 'indicateAssociateRejected' | 'indicateAssociateRequest' | 'sendProtocolVersionReject'
  | 'sendAssociateAc' | 'sendAssociateRj' | 'sendPData' | 'indicatePData' | 'sendReleaseRq'
  | 'sendReleaseRp' | 'indicateRelease' | 'confirmRelease' | 'indicateReleaseCollision'
  | 'sendAbort' | 'indicatePeerAbort' | 'indicateTransportClosed' | 'indicateProviderAbort';

/** PS3.8 Tables 9-6..9-9: what each action does and where it leads. A missing target means the
 *  next state is the current one (DT-1/2, AR-6/7, AA-6/7), taken without re-entering it. */
const DUL_ACTIONS = {
  'AE-1': [{ target: 'Sta4', actions: ['recordRequestorRole', 'openTransport'], description: 'AE-1' }],
  'AE-2': [{ target: 'Sta5', actions: ['sendAssociateRq'], description: 'AE-2' }],
  'AE-3': [{ target: 'Sta6', actions: ['recordAssociateAc', 'indicateAssociateConfirmed'], description: 'AE-3' }],
  'AE-4': [{ target: 'Sta1', actions: ['indicateAssociateRejected', 'closeTransport'], description: 'AE-4' }],
  // The TCP accept has already happened in the socket actor; nothing further to ask of it.
  'AE-5': [{ target: 'Sta2', actions: ['recordAcceptorRole'], description: 'AE-5' }],
  'AE-6': [
    { target: 'Sta3', guard: 'protocolVersionSupported', actions: ['recordAssociateRq', 'indicateAssociateRequest'], description: 'AE-6 acceptable' },
    { target: 'Sta13', actions: ['recordAssociateRq', 'sendProtocolVersionReject'], description: 'AE-6 not acceptable' },
  ],
  'AE-7': [{ target: 'Sta6', actions: ['recordAssociateAc', 'sendAssociateAc'], description: 'AE-7' }],
  'AE-8': [{ target: 'Sta13', actions: ['sendAssociateRj'], description: 'AE-8' }],
  'DT-1': [{ actions: ['sendPData'], description: 'DT-1' }],
  'DT-2': [{ actions: ['indicatePData'], description: 'DT-2' }],
  'AR-1': [{ target: 'Sta7', actions: ['sendReleaseRq'], description: 'AR-1' }],
  'AR-2': [{ target: 'Sta8', actions: ['indicateRelease'], description: 'AR-2' }],
  'AR-3': [{ target: 'Sta1', actions: ['confirmRelease', 'closeTransport'], description: 'AR-3' }],
  'AR-4': [{ target: 'Sta13', actions: ['sendReleaseRp'], description: 'AR-4' }],
  'AR-5': [{ target: 'Sta1', description: 'AR-5' }],
  'AR-6': [{ actions: ['indicatePData'], description: 'AR-6' }],
  'AR-7': [{ actions: ['sendPData'], description: 'AR-7' }],
  'AR-8': [
    { target: 'Sta9', guard: 'isRequestor', actions: ['indicateReleaseCollision'], description: 'AR-8 requestor' },
    { target: 'Sta10', actions: ['indicateReleaseCollision'], description: 'AR-8 acceptor' },
  ],
  'AR-9': [{ target: 'Sta11', actions: ['sendReleaseRp'], description: 'AR-9' }],
  'AR-10': [{ target: 'Sta12', actions: ['confirmRelease'], description: 'AR-10' }],
  'AA-1': [{ target: 'Sta13', actions: ['sendAbort'], description: 'AA-1' }],
  'AA-2': [{ target: 'Sta1', actions: ['closeTransport'], description: 'AA-2' }],
  'AA-3': [{ target: 'Sta1', actions: ['indicatePeerAbort', 'closeTransport'], description: 'AA-3' }],
  'AA-4': [{ target: 'Sta1', actions: ['indicateTransportClosed'], description: 'AA-4' }],
  'AA-5': [{ target: 'Sta1', description: 'AA-5' }],
  'AA-6': [{ description: 'AA-6 ignore PDU' }],
  'AA-7': [{ actions: ['sendAbort'], description: 'AA-7' }],
  'AA-8': [{ target: 'Sta13', actions: ['sendAbort', 'indicateProviderAbort'], description: 'AA-8' }],
} satisfies Record<string, DulTransition[]>;

export type DulActionCode = keyof typeof DUL_ACTIONS;

/** PS3.8 Table 9-10, one row per event, one column per state (Sta1 … Sta13); '.' is a blank cell. */
const TABLE_9_10: Record<DulEventType, string> = {
  //                             1    2    3    4    5    6    7    8    9    10    11   12   13
  A_ASSOCIATE_REQUESTED:        'AE-1 .    .    .    .    .    .    .    .    .     .    .    .', // Evt1
  TRANSPORT_CONNECTED:          '.    .    .    AE-2 .    .    .    .    .    .     .    .    .', // Evt2
  ASSOCIATE_AC_RECEIVED:        '.    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6', // Evt3
  ASSOCIATE_RJ_RECEIVED:        '.    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6', // Evt4
  TRANSPORT_ACCEPTED:           'AE-5 .    .    .    .    .    .    .    .    .     .    .    .', // Evt5
  ASSOCIATE_RQ_RECEIVED:        '.    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-7', // Evt6
  A_ASSOCIATE_ACCEPT_REQUESTED: '.    .    AE-7 .    .    .    .    .    .    .     .    .    .', // Evt7
  A_ASSOCIATE_REJECT_REQUESTED: '.    .    AE-8 .    .    .    .    .    .    .     .    .    .', // Evt8
  P_DATA_REQUESTED:             '.    .    .    .    .    DT-1 .    AR-7 .    .     .    .    .', // Evt9
  P_DATA_TF_RECEIVED:           '.    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6', // Evt10
  A_RELEASE_REQUESTED:          '.    .    .    .    .    AR-1 .    .    .    .     .    .    .', // Evt11
  RELEASE_RQ_RECEIVED:          '.    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6', // Evt12
  RELEASE_RP_RECEIVED:          '.    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8 AA-6', // Evt13
  A_RELEASE_RESPONSE_REQUESTED: '.    .    .    .    .    .    .    AR-4 AR-9 .     .    AR-4 .', // Evt14
  A_ABORT_REQUESTED:            '.    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1 AA-1 .', // Evt15
  ABORT_RECEIVED:               '.    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3 AA-3 AA-2', // Evt16
  TRANSPORT_CLOSED:             '.    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4 AA-4 AR-5', // Evt17
  ARTIM_EXPIRED:                '.    AA-2 .    .    .    .    .    .    .    .     .    .    AA-2', // Evt18
  INVALID_PDU_RECEIVED:         '.    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-7', // Evt19
};

const STATE_IDS: DulStateId[] = [
  'Sta1', 'Sta2', 'Sta3', 'Sta4', 'Sta5', 'Sta6', 'Sta7', 'Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12', 'Sta13',
];

const STATE_DESCRIPTIONS: Record<DulStateId, string> = {
  Sta1: 'Idle',
  Sta2: 'Transport connection open (awaiting A-ASSOCIATE-RQ PDU); ARTIM running',
  Sta3: 'Awaiting local A-ASSOCIATE response primitive',
  Sta4: 'Awaiting transport connection opening to complete',
  Sta5: 'Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU',
  Sta6: 'Association established and ready for data transfer',
  Sta7: 'Awaiting A-RELEASE-RP PDU',
  Sta8: 'Awaiting local A-RELEASE response primitive',
  Sta9: 'Release collision requestor side; awaiting A-RELEASE response',
  Sta10: 'Release collision acceptor side; awaiting A-RELEASE-RP PDU',
  Sta11: 'Release collision requestor side; awaiting A-RELEASE-RP PDU',
  Sta12: 'Release collision acceptor side; awaiting A-RELEASE response primitive',
  Sta13: 'Awaiting transport connection close indication; ARTIM running',
};

/** The action code of one cell of Table 9-10, or undefined for a blank cell. */
export function tableCell(eventType: DulEventType, state: DulStateId): DulActionCode | undefined {
  const cells = TABLE_9_10[eventType].trim().split(/\s+/);
  if (cells.length !== STATE_IDS.length) throw new Error(`Table 9-10 row ${eventType} has ${cells.length} cells`);
  const code = cells[STATE_IDS.indexOf(state)]!;
  if (code === '.') return undefined;
  if (!(code in DUL_ACTIONS)) throw new Error(`Table 9-10 row ${eventType}: unknown action ${code}`);
  return code as DulActionCode;
}

/** The states where the table answers `eventType` with exactly `action` and stays (DT-1/DT-2, AR-6/AR-7). */
function statesWhere(eventType: DulEventType, action: ActionName): ReadonlySet<string> {
  return new Set<string>(
    STATE_IDS.filter((state) => {
      const code = tableCell(eventType, state);
      return code !== undefined && DUL_ACTIONS[code].every((t: DulTransition) => !t.target && !t.guard && t.actions?.length === 1 && t.actions[0] === action);
    }),
  );
}

/**
 * The data-transfer states, read from Table 9-10 itself (which stays the one authority): where a
 * received P-DATA-TF only becomes a P-DATA indication (DT-2, AR-6) and a P-DATA request is only sent
 * (DT-1, AR-7), without a state change. In those states the socket actor moves P-DATA straight
 * between the wire and the DIMSE layer, counting it in `traffic`; in every other state it is an
 * event (Evt10, Evt9) and the table answers it (A-ABORT, ignore, or nothing for a blank cell).
 */
export const P_DATA_RECEIVE_STATES = statesWhere('P_DATA_TF_RECEIVED', 'indicatePData');
export const P_DATA_SEND_STATES = statesWhere('P_DATA_REQUESTED', 'sendPData');

/** Builds one state node from its column of Table 9-10. */
function stateNode(state: DulStateId) {
  const on: Partial<Record<DulEventType, DulTransition[]>> = {};
  for (const eventType of Object.keys(TABLE_9_10) as DulEventType[]) {
    const code = tableCell(eventType, state);
    if (code !== undefined) on[eventType] = DUL_ACTIONS[code];
  }
  // Evt18 from the running timer takes exactly the ARTIM_EXPIRED transition.
  const artim = on.ARTIM_EXPIRED;
  return { description: STATE_DESCRIPTIONS[state], on, ...(artim ? { after: { ARTIM: artim } } : {}) };
}

export const associationMachine = dul.createMachine({
  id: 'association',
  initial: 'Sta1',
  context: ({ input }) => ({ artimTimeoutMs: input.artimTimeoutMs, role: undefined, traffic: newTraffic() }),
  // The DIMSE layer: not part of Table 9-10, so none of it changes the DUL state. Messages it
  // sends still go through the table, as P_DATA_REQUESTED (Evt9), one PDU at a time.
  on: {
    DIMSE_REQUEST_RECEIVED: { actions: 'spawnTransaction' },
    DIMSE_REQUEST_STARTED: { actions: 'spawnTransaction' },
    DIMSE_RESPONSE_RECEIVED: { actions: 'routeResponse' },
    DIMSE_MESSAGE_READY: { actions: 'sendDimseMessage' },
    // A transaction is over when its machine is (its output is the outcome): one event, not two.
    'xstate.done.actor.*': { guard: 'transactionDone', actions: ['reportTransaction', 'removeTransaction'] },
  },
  states: Object.fromEntries(STATE_IDS.map((s) => [s, stateNode(s)])),
});
