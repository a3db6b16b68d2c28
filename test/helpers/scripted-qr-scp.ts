// A Query/Retrieve SCP scripted from the test, for the statuses a real archive will not produce on
// demand (A700 on C-FIND, B000 on C-MOVE, silence): built from the router's own codec, it accepts
// every proposed context (first transfer syntax), and answers each C-FIND / C-MOVE with the
// responses the test gives, recording requests, identifiers and C-CANCELs.
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { decodeCommand, encodeCommand, NO_DATASET } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import { decodePdu, encodePdu } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';

export type ScriptedResponse = {
  status: number;
  /** Identifier to send with it (already encoded in the context's syntax, Explicit VR LE here). */
  identifier?: Uint8Array;
  counts?: { remaining?: number; completed?: number; failed?: number; warning?: number };
  errorComment?: string;
  /** Wait this long before sending it. */
  delayMs?: number;
};

export type ScriptedQrScp = {
  port: number;
  /** Every request: its command and identifier (naturalized). */
  requests: { command: Command; identifier: Record<string, unknown>; /** The identifier as it came, byte for byte. */ bytes: Uint8Array }[];
  cancels: Command[];
  aborts: number;
  close(): Promise<void>;
};

export async function scriptedQrScp(script: (rq: Command, identifier: Record<string, unknown>) => ScriptedResponse[] | 'silent'): Promise<ScriptedQrScp> {
  const requests: ScriptedQrScp['requests'] = [];
  const cancels: Command[] = [];
  const state = { aborts: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const framer = new PduFramer({ maxPduLength: 1 << 24 });
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    let contexts = new Map<number, string>();
    let cancelled = new Set<number>();
    const sendDimse = (contextId: number, cmd: Command, data?: Uint8Array) => {
      if (socket.destroyed) return;
      socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId, isCommand: true, isLast: true, data: encodeCommand(cmd) }] }));
      if (data) socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId, isCommand: false, isLast: true, data }] }));
    };
    const answer = async (contextId: number, rq: Command, identifier: Record<string, unknown>) => {
      const plan = script(rq, identifier);
      if (plan === 'silent') return;
      for (const r of plan) {
        if (r.delayMs) await new Promise((res) => setTimeout(res, r.delayMs));
        const pending = r.status === 0xff00 || r.status === 0xff01;
        // After a C-CANCEL the SCP ends with Cancel (PS3.4 C.4.1.3.1.2): pending responses stop.
        if (pending && cancelled.has(rq.MessageID!)) {
          sendDimse(contextId, { CommandField: rq.CommandField | 0x8000, MessageIDBeingRespondedTo: rq.MessageID, AffectedSOPClassUID: rq.AffectedSOPClassUID, CommandDataSetType: NO_DATASET, Status: 0xfe00 });
          return;
        }
        sendDimse(contextId, {
          CommandField: rq.CommandField | 0x8000,
          MessageIDBeingRespondedTo: rq.MessageID,
          AffectedSOPClassUID: rq.AffectedSOPClassUID,
          CommandDataSetType: r.identifier ? 0x0000 : NO_DATASET,
          Status: r.status,
          ...(r.errorComment ? { ErrorComment: r.errorComment } : {}),
          ...(r.counts?.remaining !== undefined ? { NumberOfRemainingSuboperations: r.counts.remaining } : {}),
          ...(r.counts?.completed !== undefined ? { NumberOfCompletedSuboperations: r.counts.completed } : {}),
          ...(r.counts?.failed !== undefined ? { NumberOfFailedSuboperations: r.counts.failed } : {}),
          ...(r.counts?.warning !== undefined ? { NumberOfWarningSuboperations: r.counts.warning } : {}),
        }, r.identifier);
      }
    };
    socket.on('data', (chunk) => {
      for (const raw of framer.push(chunk)) {
        const pdu = decodePdu(raw);
        if (pdu.type === 'A-ASSOCIATE-RQ') {
          contexts = new Map(pdu.presentationContexts.map((pc) => [pc.id, pc.transferSyntaxes[0]]));
          cancelled = new Set();
          socket.write(encodePdu({
            type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: pdu.calledAeTitle, callingAeTitle: pdu.callingAeTitle, applicationContext: pdu.applicationContext,
            presentationContexts: pdu.presentationContexts.map((pc) => ({ id: pc.id, result: 0 as const, transferSyntax: pc.transferSyntaxes[0] })),
            userInformation: { maxPduLength: 16384, implementationClassUid: '1.2.3', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
          }));
        } else if (pdu.type === 'A-RELEASE-RQ') {
          socket.end(encodePdu({ type: 'A-RELEASE-RP' }));
        } else if (pdu.type === 'A-ABORT') {
          state.aborts++;
          socket.destroy();
        } else if (pdu.type === 'P-DATA-TF') {
          for (const pdv of pdu.pdvs) {
            if (pdv.isCommand) command.push(Buffer.from(pdv.data));
            else dataset.push(Buffer.from(pdv.data));
            if (!pdv.isLast) continue;
            const rq = decodeCommand(Buffer.concat(command));
            if (pdv.isCommand && rq.CommandDataSetType !== NO_DATASET) continue;
            command = [];
            const bytes = Buffer.concat(dataset);
            dataset = [];
            if (rq.CommandField === 0x0fff) {
              cancels.push(rq);
              cancelled.add(rq.MessageIDBeingRespondedTo!);
              continue;
            }
            const identifier = bytes.length > 0 ? parseHeader(bytes, contexts.get(pdv.contextId) ?? '1.2.840.10008.1.2.1').dataset : {};
            requests.push({ command: rq, identifier, bytes: new Uint8Array(bytes) });
            void answer(pdv.contextId, rq, identifier);
          }
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    cancels,
    get aborts() {
      return state.aborts;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
