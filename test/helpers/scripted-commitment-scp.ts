// A peer scripted from the test that stores (C-STORE: Success) and performs Storage Commitment as SCP,
// built from the router's own codec: it answers each N-ACTION-RQ with the status the test says, then
// (report: 'same-association') sends the N-EVENT-REPORT-RQ on that association at once, with the
// result the test says (default: every instance committed), and records the router's answers.
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { eventReportCommand } from '../../actors/jobs/commitment-report.ts';
import { decodeCommand, encodeCommand, responseFor } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import { decodePdu, encodePdu } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';
import { decodeCommitmentRequest, encodeCommitmentResult } from '../../protocol/storage-commitment.ts';
import type { CommitmentRequest, CommitmentResult } from '../../protocol/storage-commitment.ts';

export type ScriptedCommitmentScp = {
  port: number;
  /** The commitment requests received (decoded Action Information). */
  requests: CommitmentRequest[];
  /** The router's N-EVENT-REPORT-RSPs. */
  reportResponses: Command[];
  /** Instances stored (SOP Instance UIDs). */
  stored: string[];
  /** Associations released by the router. */
  releases: number;
  /** Most connections open at the same time. */
  maxConcurrent: number;
  close(): Promise<void>;
};

export async function scriptedCommitmentScp(opts: {
  /** N-ACTION-RSP status (default Success). */
  actionStatus?: number;
  /** Where the report goes: on the N-ACTION's association at once, or nowhere (default same-association). */
  report?: 'same-association' | 'none';
  /** Leave this many first N-ACTIONs unanswered (the router's DIMSE timeout ends them). */
  silentActions?: number;
  /** The report for a request (default: all committed). */
  result?: (request: CommitmentRequest) => CommitmentResult;
} = {}): Promise<ScriptedCommitmentScp> {
  const state = { requests: [] as CommitmentRequest[], reportResponses: [] as Command[], stored: [] as string[], releases: 0, maxConcurrent: 0 };
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    state.maxConcurrent = Math.max(state.maxConcurrent, sockets.size);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const framer = new PduFramer({ maxPduLength: 1 << 24 });
    const syntaxes = new Map<number, string>();
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    let nextId = 0x8000;
    const send = (contextId: number, cmd: Command, data?: Uint8Array) => {
      socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId, isCommand: true, isLast: true, data: encodeCommand(cmd) }] }));
      if (data) socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId, isCommand: false, isLast: true, data }] }));
    };
    socket.on('data', (chunk) => {
      for (const raw of framer.push(chunk)) {
        const pdu = decodePdu(raw);
        if (pdu.type === 'A-ASSOCIATE-RQ') {
          for (const pc of pdu.presentationContexts) syntaxes.set(pc.id, pc.transferSyntaxes[0]);
          socket.write(encodePdu({
            type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: pdu.calledAeTitle, callingAeTitle: pdu.callingAeTitle, applicationContext: pdu.applicationContext,
            presentationContexts: pdu.presentationContexts.map((pc) => ({ id: pc.id, result: 0 as const, transferSyntax: pc.transferSyntaxes[0] })),
            userInformation: { maxPduLength: 16384, implementationClassUid: '1.2.3', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
          }));
        } else if (pdu.type === 'P-DATA-TF') {
          for (const pdv of pdu.pdvs) {
            if (pdv.isCommand) command.push(Buffer.from(pdv.data));
            else dataset.push(Buffer.from(pdv.data));
            if (!pdv.isLast || (pdv.isCommand && decodeCommand(Buffer.concat(command)).CommandDataSetType !== 0x0101)) continue;
            const rq = decodeCommand(Buffer.concat(command));
            const bytes = Buffer.concat(dataset);
            command = [];
            dataset = [];
            if (rq.CommandField === 0x8100) {
              state.reportResponses.push(rq);
            } else if (rq.CommandField === 0x0001) {
              state.stored.push(rq.AffectedSOPInstanceUID ?? '');
              send(pdv.contextId, responseFor(rq, 0));
            } else if (rq.CommandField === 0x0130) {
              const request = decodeCommitmentRequest(bytes, syntaxes.get(pdv.contextId)!);
              state.requests.push(request);
              if (state.requests.length <= (opts.silentActions ?? 0)) continue;
              send(pdv.contextId, responseFor(rq, opts.actionStatus ?? 0));
              if ((opts.report ?? 'same-association') === 'same-association' && (opts.actionStatus ?? 0) === 0) {
                const result = opts.result?.(request) ?? { transactionUid: request.transactionUid, committed: request.referenced, failed: [] };
                send(pdv.contextId, eventReportCommand(nextId++, result), encodeCommitmentResult(result, syntaxes.get(pdv.contextId)!));
              }
            } else send(pdv.contextId, responseFor(rq, 0x0211));
          }
        } else if (pdu.type === 'A-RELEASE-RQ') {
          state.releases++;
          socket.end(encodePdu({ type: 'A-RELEASE-RP' }));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get requests() { return state.requests; },
    get reportResponses() { return state.reportResponses; },
    get stored() { return state.stored; },
    get releases() { return state.releases; },
    get maxConcurrent() { return state.maxConcurrent; },
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
