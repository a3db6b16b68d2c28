// The socket side of one association: bytes → PDUs → the association machine (PS3.8 DUL),
// its emitted PDUs → bytes, and DIMSE messages ↔ P-DATA fragments. The machine decides; this
// only moves bytes, with real backpressure both ways. Both roles use it: the listener hands it
// an accepted socket, the SCU a connect function.
// The fast path: in the states where Table 9-10 only passes P-DATA through (DT-1/DT-2, AR-6/AR-7:
// P_DATA_*_STATES, derived from the table), a P-DATA-TF goes between the wire and the DIMSE
// assembler without becoming an XState event; it is counted in the machine's `traffic` instead. In
// any other state it is sent to the machine as Evt9/Evt10 and the table answers it (A-ABORT …).
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ActorRefFrom } from 'xstate';
import type { associationMachine, AssociationTraffic } from '../../machines/association.machine.ts';
import { P_DATA_RECEIVE_STATES, P_DATA_SEND_STATES } from '../../machines/association.machine.ts';
import type { DatasetSource, DimseOutcome } from '../../machines/dimse/dimse.events.ts';
import type { Command } from '../../protocol/dimse.ts';
import { encodeCommand, isResponse } from '../../protocol/dimse.ts';
import { DimseAssembler, fragmentMessage } from '../../protocol/dimse-assembler.ts';
import type { AcceptedContext } from '../../protocol/negotiation.ts';
import { decodePdu, encodePDataTfHeader, encodePdu, PduDecodeError } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';
import type { Pdu, Pdv } from '../../protocol/pdu.types.ts';
import { AbortReason } from '../../protocol/pdu.types.ts';
import { datasetBytes, pdvPayloads } from '../forward/dataset-stream.ts';
import { collectingSink } from './collecting-sink.ts';

export type AssociationMachineRef = ActorRefFrom<typeof associationMachine>;

/** Where a received dataset's fragments go (the Storage SCP's spool writer, or a drain). */
export type DatasetSink = {
  /** false: pause the socket until `drained()` resolves. */
  write(data: Uint8Array): boolean;
  drained(): Promise<void>;
  end(): void;
};

export type AssociationHandlers = {
  /** A DIMSE request arrived (SCP role). Returns where its dataset goes, if it has one. */
  onRequest(contextId: number, command: Command, expectsDataset: boolean): DatasetSink | undefined;
  /** The transport closed; `reason` when this side ended the association for a reason of its own. */
  onClosed(reason?: string): void;
};

/** Largest PDU we send when the peer said "no limit" (maximum length 0). */
const UNLIMITED_PDU_SEND_LENGTH = 1 << 20;
/** PDU length field = per PDV: 4-byte item length + 1 context id + 1 control header + data. */
const PDV_OVERHEAD = 6;
/** PDU type, reserved byte and the 4-byte length field. */
const PDATA_HEADER = 6;

/** A P-DATA-TF's length on the wire. */
const pDataWireLength = (pdvs: Pdv[]) => pdvs.reduce((n, pdv) => n + PDV_OVERHEAD + pdv.data.length, PDATA_HEADER);

export class Association {
  readonly id: string;
  readonly machine: AssociationMachineRef;
  log: Logger;
  /** Accepted presentation contexts, once the association is established. */
  contexts = new Map<number, AcceptedContext>();
  /** What the peer told us it can receive (0 = no limit). */
  peerMaxPduLength = 0;
  remoteAddress = '';

  private socket: Socket | undefined;
  private readonly framer: PduFramer;
  private readonly assembler = new DimseAssembler();
  private readonly handlers: AssociationHandlers;
  private sink: DatasetSink | undefined;
  /** The machine's counters (one object for its life), incremented here as PDUs pass. */
  private readonly traffic: AssociationTraffic;
  private sendChain: Promise<void> = Promise.resolve();
  private readonly idleTimeoutMs: number;
  private reading = true;
  private closed = false;
  /** Why this side ended the association, when it did so for a reason of its own (told to onClosed). */
  private closeReason: string | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(opts: {
    id: string;
    machine: AssociationMachineRef;
    logger: Logger;
    maxReceivePduLength: number;
    idleTimeoutMs: number;
    handlers: AssociationHandlers;
  }) {
    this.id = opts.id;
    this.machine = opts.machine;
    this.log = opts.logger;
    this.handlers = opts.handlers;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.framer = new PduFramer({ maxPduLength: opts.maxReceivePduLength });
    this.closedPromise = new Promise((resolve) => (this.resolveClosed = resolve));
    this.traffic = opts.machine.getSnapshot().context.traffic;
    this.wireMachine();
  }

  /** Resolves when the transport has closed, whatever the reason. */
  get done(): Promise<void> {
    return this.closedPromise;
  }

  attach(socket: Socket): void {
    this.socket = socket;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.setTimeout(this.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('timeout', () => {
      this.log.warn({ idleTimeoutMs: this.idleTimeoutMs }, 'network timeout: no data from peer, aborting');
      this.machine.send({ type: 'A_ABORT_REQUESTED' });
      socket.destroy();
    });
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'transport error'));
    socket.on('close', () => this.onTransportClosed());
  }

  /** Send one DIMSE message: the command, then the dataset streamed from its file. Serialized. */
  sendDimse(contextId: number, command: Command, dataset?: DatasetSource): Promise<void> {
    const next = this.sendChain.then(() => this.writeDimse(contextId, command, dataset));
    this.sendChain = next.catch((err) => this.log.warn({ err: String(err) }, 'sending a DIMSE message failed'));
    return next;
  }

  private wireMachine(): void {
    const m = this.machine;
    m.on('SEND_PDU', ({ pdu }) => this.writePdu(pdu));
    m.on('CLOSE_TRANSPORT', () => this.closeTransport());
    // Only when someone sends the machine Evt10 in a data-transfer state (the fast path does not).
    m.on('P_DATA_INDICATION', ({ pdu }) => void this.onPData(pdu.pdvs));
    m.on('ABORT_INDICATION', (e) => this.log.warn({ ...e, type: undefined }, 'association aborted'));
    m.on('DIMSE_SEND', ({ contextId, command, dataset }) => {
      void this.sendDimse(contextId, command, dataset).catch((err: unknown) => this.abortHalfSent(err));
    });
  }

  private writePdu(pdu: Pdu): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    this.traffic.pdusSent++;
    if (pdu.type === 'P-DATA-TF') this.traffic.pDataBytesSent += pDataWireLength(pdu.pdvs);
    if (pdu.type === 'P-DATA-TF' && pdu.pdvs.length === 1) {
      this.writePdv(socket, pdu.pdvs[0]);
      return;
    }
    socket.write(encodePdu(pdu));
  }

  /** Bulk data: header and payload go out as two writes in one syscall, the payload uncopied. */
  private writePdv(socket: Socket, pdv: Pdv): void {
    socket.cork();
    socket.write(encodePDataTfHeader(pdv, pdv.data.length));
    socket.write(pdv.data);
    process.nextTick(() => socket.uncork());
  }

  /**
   * The dataset's bytes failed while its message was half sent (a stored file that no longer reads or
   * converts). A DIMSE message cannot be taken back (PS3.7 has no way to end one early), and the peer
   * would wait for the rest until its timeout: the association is aborted now, and what waits on it
   * learns why.
   */
  private abortHalfSent(err: unknown): void {
    if (this.closed) return;
    this.closeReason = `dataset stream failed: ${err instanceof Error ? err.message : String(err)}`;
    this.log.error({ reason: this.closeReason }, 'aborting the association: a message could not be sent whole');
    this.machine.send({ type: 'A_ABORT_REQUESTED' });
    this.closeSoon();
  }

  /** Close the transport after an abort we asked for, without waiting on the peer (PS3.8 AA-1 then ARTIM). */
  closeSoon(): void {
    this.closeTransport();
  }

  private closeTransport(): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    socket.end();
    // A peer that never closes its side must not hold the slot.
    setTimeout(() => socket.destroy(), 2000).unref();
  }

  private onBytes(chunk: Buffer): void {
    if (!this.reading) return;
    let raws: Buffer[];
    try {
      raws = this.framer.push(chunk);
    } catch (err) {
      this.invalidPdu(err);
      return;
    }
    for (const raw of raws) {
      let pdu: Pdu;
      try {
        pdu = decodePdu(raw);
      } catch (err) {
        this.invalidPdu(err);
        return;
      }
      this.traffic.pdusReceived++;
      if (pdu.type === 'P-DATA-TF') {
        this.traffic.pDataBytesReceived += raw.length;
        // Data transfer: straight to the DIMSE assembler (DT-2 / AR-6 only indicate it).
        if (P_DATA_RECEIVE_STATES.has(this.machine.getSnapshot().value)) {
          if (!this.onPData(pdu.pdvs)) return;
          continue;
        }
      }
      this.machine.send(eventForPdu(pdu));
      if (!this.reading) return;
    }
  }

  private onPData(pdvs: Pdv[]): boolean {
    for (const pdv of pdvs) if (!this.onPdv(pdv)) return false;
    return this.reading;
  }

  private invalidPdu(err: unknown): void {
    const reason = err instanceof PduDecodeError ? err.reason : AbortReason.NOT_SPECIFIED;
    const detail = err instanceof Error ? err.message : String(err);
    this.log.warn({ reason, detail }, 'invalid PDU received, aborting');
    this.reading = false;
    this.machine.send({ type: 'INVALID_PDU_RECEIVED', reason, detail });
  }

  /** One received PDV through the DIMSE assembler; false when the association had to be aborted. */
  private onPdv(pdv: Pdv): boolean {
    if (!this.contexts.has(pdv.contextId)) {
      return this.protocolAbort(`PDV on presentation context ${pdv.contextId}, which was not accepted`);
    }
    let outputs;
    try {
      outputs = this.assembler.push(pdv);
    } catch (err) {
      return this.protocolAbort(err instanceof Error ? err.message : String(err));
    }
    for (const out of outputs) {
      if (out.kind === 'command') {
        if (isResponse(out.command.CommandField)) {
          const command = out.command;
          // A response's identifier (C-FIND matches, C-MOVE failed UIDs) is small: collected, then delivered with it.
          if (out.expectsDataset) this.sink = collectingSink((dataset) => this.machine.send({ type: 'DIMSE_RESPONSE_RECEIVED', command, dataset }));
          else this.machine.send({ type: 'DIMSE_RESPONSE_RECEIVED', command });
        } else {
          this.sink = this.handlers.onRequest(out.contextId, out.command, out.expectsDataset);
        }
      } else {
        this.feedSink(out.data, out.isLast);
      }
    }
    return true;
  }

  private feedSink(data: Uint8Array, isLast: boolean): void {
    const sink = this.sink;
    if (!sink) return;
    if (!sink.write(data) && this.socket && !this.socket.isPaused()) {
      // Backpressure: a slow spool pauses the socket (and so TCP pauses the sender).
      this.socket.pause();
      void sink.drained().then(() => this.socket?.resume());
    }
    if (isLast) {
      this.sink = undefined;
      sink.end();
    }
  }

  private protocolAbort(why: string): false {
    this.log.warn({ why }, 'DIMSE protocol violation, aborting');
    this.reading = false;
    this.machine.send({ type: 'INVALID_PDU_RECEIVED', reason: AbortReason.UNEXPECTED_PDU_PARAMETER, detail: why });
    return false;
  }

  private maxPdvData(): number {
    const max = this.peerMaxPduLength === 0 ? UNLIMITED_PDU_SEND_LENGTH : this.peerMaxPduLength;
    return max - PDV_OVERHEAD;
  }

  private sendPdv(pdv: Pdv): void {
    const socket = this.socket;
    // Data transfer (DT-1 / AR-7 only send it): straight to the socket.
    if (socket && P_DATA_SEND_STATES.has(this.machine.getSnapshot().value)) {
      if (socket.destroyed) return;
      this.traffic.pdusSent++;
      this.traffic.pDataBytesSent += PDATA_HEADER + PDV_OVERHEAD + pdv.data.length;
      this.writePdv(socket, pdv);
      return;
    }
    // Elsewhere the table decides (a blank cell: not sent).
    this.machine.send({ type: 'P_DATA_REQUESTED', pdu: { type: 'P-DATA-TF', pdvs: [pdv] } });
  }

  private async writeDimse(contextId: number, command: Command, dataset?: DatasetSource): Promise<void> {
    for (const pdv of fragmentMessage(contextId, encodeCommand(command), true, this.maxPdvData())) this.sendPdv(pdv);
    if (!dataset) return;
    for await (const { data, isLast } of pdvPayloads(datasetBytes(dataset), this.maxPdvData())) {
      if (this.closed) throw new Error('association closed while sending a dataset');
      this.sendPdv({ contextId, isCommand: false, isLast, data });
      if (this.socket?.writableNeedDrain) await once(this.socket, 'drain');
    }
  }

  private onTransportClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.reading = false;
    this.machine.send({ type: 'TRANSPORT_CLOSED' });
    this.handlers.onClosed(this.closeReason);
    this.resolveClosed();
  }
}

/** The DUL event (PS3.8 Evt3/4/6/10/12/13/16) for a received, decoded PDU. */
function eventForPdu(pdu: Pdu) {
  switch (pdu.type) {
    case 'A-ASSOCIATE-RQ':
      return { type: 'ASSOCIATE_RQ_RECEIVED', pdu } as const;
    case 'A-ASSOCIATE-AC':
      return { type: 'ASSOCIATE_AC_RECEIVED', pdu } as const;
    case 'A-ASSOCIATE-RJ':
      return { type: 'ASSOCIATE_RJ_RECEIVED', pdu } as const;
    case 'P-DATA-TF':
      return { type: 'P_DATA_TF_RECEIVED', pdu } as const;
    case 'A-RELEASE-RQ':
      return { type: 'RELEASE_RQ_RECEIVED' } as const;
    case 'A-RELEASE-RP':
      return { type: 'RELEASE_RP_RECEIVED' } as const;
    case 'A-ABORT':
      return { type: 'ABORT_RECEIVED', pdu } as const;
  }
}

export type { DimseOutcome };
