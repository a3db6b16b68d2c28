// The requestor side: open an association to a peer AE, run C-ECHO and C-STORE transactions on
// it (each an XState machine spawned by the association machine), release it.
import { connect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';
import { createActor } from 'xstate';
import { associationMachine } from '../../machines/association.machine.ts';
import type { ScuService } from '../../machines/association.machine.ts';
import type { DatasetSource, DimseOutcome } from '../../machines/dimse/dimse.events.ts';
import type { Command } from '../../protocol/dimse.ts';
import { CommandField, NO_DATASET, Priority } from '../../protocol/dimse.ts';
import type { AcceptedContext } from '../../protocol/negotiation.ts';
import { isPermanentReject } from '../../protocol/association-reject.ts';
import type { AssociateRj, PresentationContextRq, RoleSelection } from '../../protocol/pdu.types.ts';
import { DICOM_APPLICATION_CONTEXT } from '../../protocol/pdu.types.ts';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';
import { Association } from './association.ts';
import type { AssociationHandlers, AssociationMachineRef } from './association.ts';
import type { Part10File } from '../ingest/part10-file.ts';
import type { PeerTlsConfig } from '../../config/config.ts';
import { clientSecureContext, warnIfPeerCertificateExpiring } from './tls.ts';

export type ScuOptions = {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  contexts: Omit<PresentationContextRq, 'id'>[];
  maxPduLength?: number;
  connectTimeoutMs?: number;
  dimseTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Connect over TLS with this profile and material (files read at each connect). Absent: plain TCP. */
  tls?: PeerTlsConfig;
  /** SCP/SCU role selection proposed (PS3.7 D.3.3.4), e.g. SCP role for a Storage Commitment report. */
  roleSelections?: RoleSelection[];
  /** A request the peer sends on this association (e.g. a Storage Commitment N-EVENT-REPORT): where its
   *  dataset goes. Absent: such requests get no machine of ours. */
  onRequest?: AssociationHandlers['onRequest'];
  /**
   * Drive this upper-layer machine (in Sta1, owned by another actor, e.g. a peer machine's
   * 'association' child, so the association is in the actor tree) instead of creating a standalone
   * one. It is used for this one association and left to its owner to stop.
   */
  association?: AssociationMachineRef;
  logger: Logger;
};

/** PS3.8 Table 9-21 wording, for messages an integrator reads. */
export function describeReject(rj: AssociateRj): string {
  const result = rj.result === 1 ? 'rejected-permanent' : 'rejected-transient';
  const reasons: Record<string, string> = {
    '1/1': 'no-reason-given',
    '1/2': 'application-context-name-not-supported',
    '1/3': 'calling-AE-title-not-recognized',
    '1/7': 'called-AE-title-not-recognized',
    '2/1': 'no-reason-given',
    '2/2': 'protocol-version-not-supported',
    '3/1': 'temporary-congestion',
    '3/2': 'local-limit-exceeded',
  };
  return `${result}, source ${rj.source}, reason ${rj.reason} (${reasons[`${rj.source}/${rj.reason}`] ?? 'reserved'})`;
}

export class AssociationRejectedError extends Error {
  readonly rj: AssociateRj;
  constructor(rj: AssociateRj) {
    super(`association rejected: ${describeReject(rj)}`);
    this.rj = rj;
  }

  /** Whether trying again later can help (PS3.8 9.3.4: result 2, rejected-transient); the peer machine reads it. */
  get retryable(): boolean {
    return !isPermanentReject(this.rj);
  }
}

let nextScu = 1;

export class ScuAssociation {
  readonly association: Association;
  private nextMessageId = 1;
  private readonly dimseTimeoutMs: number;
  private readonly waiting = new Map<number, (outcome: DimseOutcome) => void>();

  private constructor(association: Association, dimseTimeoutMs: number) {
    this.association = association;
    this.dimseTimeoutMs = dimseTimeoutMs;
    association.machine.on('DIMSE_COMPLETED', ({ outcome }) => {
      this.waiting.get(outcome.messageId)?.(outcome);
      this.waiting.delete(outcome.messageId);
    });
  }

  static async open(opts: ScuOptions): Promise<ScuAssociation> {
    const id = `scu-${nextScu++}`;
    const dimseTimeoutMs = opts.dimseTimeoutMs ?? 60_000;
    const owned = opts.association;
    if (owned && (owned.getSnapshot().status !== 'active' || owned.getSnapshot().value !== 'Sta1')) {
      throw new Error(`the given association machine is not idle (${owned.getSnapshot().status}, ${JSON.stringify(owned.getSnapshot().value)})`);
    }
    const machine = owned ?? createActor(associationMachine, { input: { artimTimeoutMs: 30_000, dimseTimeoutMs } }).start();
    // Only a machine created here is stopped here; an owned one is stopped by its owner.
    const stopMachine = () => {
      if (!owned) machine.stop();
    };
    const log = opts.logger.child({ assoc: id, callingAe: opts.callingAeTitle, calledAe: opts.calledAeTitle, peer: `${opts.host}:${opts.port}` });
    const association = new Association({
      id,
      machine,
      logger: log,
      maxReceivePduLength: opts.maxPduLength ?? 16384,
      idleTimeoutMs: opts.idleTimeoutMs ?? 120_000,
      handlers: {
        // We are the SCU here; a peer request on this association gets no machine of ours unless asked for.
        onRequest: opts.onRequest ?? (() => undefined),
        // Transactions still waiting end now, as failures: nothing will answer them any more.
        onClosed: (reason) => {
          for (const child of Object.values(machine.getSnapshot().children)) child?.send({ type: 'ASSOCIATION_ENDED', reason: reason ?? 'association closed' });
          stopMachine();
        },
      },
    });
    const rq = {
      type: 'A-ASSOCIATE-RQ' as const,
      protocolVersion: 1,
      calledAeTitle: opts.calledAeTitle,
      callingAeTitle: opts.callingAeTitle,
      applicationContext: DICOM_APPLICATION_CONTEXT,
      presentationContexts: opts.contexts.map((c, i) => ({ ...c, id: 2 * i + 1 })),
      userInformation: {
        maxPduLength: opts.maxPduLength ?? 16384,
        implementationClassUid: IMPLEMENTATION_CLASS_UID,
        implementationVersionName: IMPLEMENTATION_VERSION_NAME,
        roleSelections: opts.roleSelections ?? [],
        sopClassExtended: [],
        sopClassCommonExtended: [],
      },
    };
    if (rq.presentationContexts.length > 128) throw new Error('more than 128 presentation contexts in one association');

    let transportError: string | undefined;
    let failOpen: (err: Error) => void = () => {};
    const established = new Promise<void>((resolve, reject) => {
      failOpen = reject;
      machine.on('ASSOCIATE_CONFIRMED', ({ ac }) => {
        association.peerMaxPduLength = ac.userInformation.maxPduLength;
        for (const pc of ac.presentationContexts) {
          const proposed = rq.presentationContexts.find((p) => p.id === pc.id);
          if (pc.result === 0 && proposed) {
            association.contexts.set(pc.id, { id: pc.id, abstractSyntax: proposed.abstractSyntax, transferSyntax: pc.transferSyntax });
          }
        }
        resolve();
      });
      machine.on('ASSOCIATE_REJECTED', ({ rj }) => reject(new AssociationRejectedError(rj)));
      machine.on('ABORT_INDICATION', (e) =>
        reject(new Error(transportError
          ? `connection to ${opts.host}:${opts.port} failed before the association was established: ${transportError}`
          : `association aborted while establishing (${JSON.stringify(e)})`)),
      );
      void association.done.then(() =>
        reject(new Error(`connection to ${opts.host}:${opts.port} closed before the association was established${transportError ? `: ${transportError}` : ''}`)),
      );
    });
    machine.on('OPEN_TRANSPORT', () => {
      let socket: Socket;
      try {
        socket = openTransport(opts, log, () => machine.send({ type: 'TRANSPORT_CONNECTED' }));
      } catch (err) {
        failOpen(err as Error); // e.g. the TLS files cannot be read
        if (owned) machine.send({ type: 'A_ABORT_REQUESTED' }); // Sta4 → Sta1 (AA-2)
        stopMachine();
        return;
      }
      socket.on('error', (err: NodeJS.ErrnoException) => (transportError ??= err.code ? `${err.code}: ${err.message}` : err.message));
      association.attach(socket);
    });
    machine.send({ type: 'A_ASSOCIATE_REQUESTED', rq });
    await established;
    log.info({ contexts: [...association.contexts.values()].length }, 'association established');
    return new ScuAssociation(association, dimseTimeoutMs);
  }

  /** The accepted context for this abstract syntax in this transfer syntax (any, if not given). */
  contextFor(abstractSyntax: string, transferSyntax?: string): AcceptedContext | undefined {
    for (const c of this.association.contexts.values()) {
      if (c.abstractSyntax === abstractSyntax && (!transferSyntax || c.transferSyntax === transferSyntax)) return c;
    }
    return undefined;
  }

  private run(contextId: number, command: Command, dataset?: DatasetSource): Promise<DimseOutcome> {
    return this.runTransaction('scuRequest', contextId, command, dataset);
  }

  /** A Message ID not used yet on this association (for requests built elsewhere, e.g. actors/jobs/qr-scu.ts). */
  newMessageId(): number {
    return this.nextMessageId++;
  }

  /** Start one SCU transaction machine of `service` for `command`; resolves with its outcome. */
  runTransaction(service: ScuService, contextId: number, command: Command, dataset?: DatasetSource): Promise<DimseOutcome> {
    const messageId = command.MessageID!;
    const outcome = new Promise<DimseOutcome>((resolve) => this.waiting.set(messageId, resolve));
    this.association.machine.send({
      type: 'DIMSE_REQUEST_STARTED',
      service,
      input: { associationId: this.association.id, messageId, contextId, command, dimseTimeoutMs: this.dimseTimeoutMs, dataset },
    });
    return outcome;
  }

  echo(): Promise<DimseOutcome> {
    const context = this.contextFor(VERIFICATION_SOP_CLASS);
    if (!context) return Promise.reject(new Error('the peer did not accept the Verification SOP class'));
    const messageId = this.nextMessageId++;
    return this.run(context.id, {
      CommandField: CommandField.C_ECHO_RQ,
      MessageID: messageId,
      AffectedSOPClassUID: VERIFICATION_SOP_CLASS,
      CommandDataSetType: NO_DATASET,
    });
  }

  /** C-STORE a Part-10 file as it is, on the context accepted for its SOP class and transfer syntax. */
  store(file: Part10File): Promise<DimseOutcome> {
    const context = this.contextFor(file.sopClassUid, file.transferSyntaxUid);
    if (!context) {
      return Promise.resolve({
        messageId: 0,
        failure: `the peer accepted no presentation context for ${file.sopClassUid} in ${file.transferSyntaxUid}`,
      });
    }
    const source: DatasetSource = { kind: 'file', path: file.path, offset: file.datasetOffset, length: file.datasetLength };
    return this.storeDataset(context.id, file.sopClassUid, file.sopInstanceUid, source);
  }

  /** C-STORE a dataset already encoded in `contextId`'s transfer syntax (or converted to it on the way). */
  storeDataset(contextId: number, sopClassUid: string, sopInstanceUid: string, source: DatasetSource): Promise<DimseOutcome> {
    const messageId = this.nextMessageId++;
    return this.run(
      contextId,
      {
        CommandField: CommandField.C_STORE_RQ,
        MessageID: messageId,
        AffectedSOPClassUID: sopClassUid,
        AffectedSOPInstanceUID: sopInstanceUid,
        Priority: Priority.MEDIUM,
        CommandDataSetType: 0x0000,
      },
      source,
    );
  }

  /** Resolves once the transport is closed, however that happens. */
  get closed(): Promise<void> {
    return this.association.done;
  }

  /** A-RELEASE; resolves once the transport is closed. */
  async release(timeoutMs = 10_000): Promise<void> {
    this.association.machine.send({ type: 'A_RELEASE_REQUESTED' });
    // PS3.8 gives no timer for the A-RELEASE-RP; a peer that never answers is aborted.
    const timer = setTimeout(() => this.abort(), timeoutMs);
    timer.unref();
    await this.association.done;
    clearTimeout(timer);
  }

  /** A-ABORT, and the transport closes (ARTIM bounds the wait for the peer to close its side). */
  abort(): void {
    this.association.machine.send({ type: 'A_ABORT_REQUESTED' });
    this.association.closeSoon();
  }
}

/**
 * TCP, or TLS with the peer's profile: the association starts once the handshake is done (bounded by
 * the connect timeout), and the peer's certificate must chain to the configured CAs and carry the
 * expected name (serverName, else the host; an IP address is checked against IP SANs).
 */
function openTransport(opts: ScuOptions, log: Logger, connected: () => void): Socket {
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  if (!opts.tls) {
    const socket = connect({ host: opts.host, port: opts.port, noDelay: true, timeout: timeoutMs });
    socket.once('connect', connected);
    return socket;
  }
  const owner = `peer ${opts.calledAeTitle}@${opts.host}:${opts.port}`;
  const expectedName = opts.tls.serverName ?? opts.host;
  const socket = tlsConnect({
    host: opts.host,
    port: opts.port,
    secureContext: clientSecureContext(owner, opts.tls),
    // SNI carries host names only (RFC 6066 3).
    ...(isIP(expectedName) ? {} : { servername: expectedName }),
    checkServerIdentity: (_host, cert) => checkServerIdentity(expectedName, cert),
  });
  const timer = setTimeout(() => socket.destroy(new Error(`TLS handshake not completed after ${timeoutMs} ms`)), timeoutMs);
  socket.once('close', () => clearTimeout(timer));
  socket.once('secureConnect', () => {
    clearTimeout(timer);
    const cipher = socket.getCipher();
    log.info({ protocol: socket.getProtocol(), cipher: cipher.standardName ?? cipher.name }, 'TLS handshake completed');
    warnIfPeerCertificateExpiring(socket.getPeerX509Certificate(), owner, log);
    connected();
  });
  return socket;
}
