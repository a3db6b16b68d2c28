// A Storage SCP scripted from the test, built from the router's own codec: it accepts every
// proposed context (first transfer syntax, or a required one), records every PDU's length and
// every dataset, and answers each C-STORE with whatever status the test says.
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { decodeCommand, encodeCommand, responseFor } from '../../protocol/dimse.ts';
import type { Command } from '../../protocol/dimse.ts';
import { decodePdu, encodePdu } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';

export type ScriptedScp = {
  server: Server;
  port: number;
  pduLengths: number[];
  /** Each C-STORE received: its command and dataset bytes. */
  stores: { command: Command; dataset: Buffer }[];
  /** Most connections open at the same time. */
  maxConcurrent: number;
  close(): Promise<void>;
};

export async function scriptedScp(opts: {
  maxPduLength?: number;
  /** The status to answer this C-STORE with (default Success). */
  status?: (command: Command, dataset: Buffer) => number;
  /** Accept only this transfer syntax (default: the first proposed). */
  transferSyntax?: string;
  /** Misbehave on the n-th dataset fragment received (1-based, counted over the SCP's life): cut the
   *  connection (FIN), reset it (RST), or never answer that C-STORE. */
  fault?: (fragment: number) => 'close' | 'reset' | 'silent' | undefined;
  /** Wait this long before answering each C-STORE. */
  delayMs?: number;
  /** Listen on this port (default: any free one). */
  port?: number;
} = {}): Promise<ScriptedScp> {
  let open = 0;
  const result = { maxConcurrent: 0 };
  let fragments = 0;
  const silenced = new Set<string>();
  const pduLengths: number[] = [];
  const stores: ScriptedScp['stores'] = [];
  const server = createServer((socket) => {
    result.maxConcurrent = Math.max(result.maxConcurrent, ++open);
    socket.once('close', () => open--);
    const framer = new PduFramer({ maxPduLength: 1 << 24 });
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      for (const raw of framer.push(chunk)) {
        const pdu = decodePdu(raw);
        if (pdu.type === 'A-ASSOCIATE-RQ') {
          socket.write(
            encodePdu({
              type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: pdu.calledAeTitle, callingAeTitle: pdu.callingAeTitle,
              applicationContext: pdu.applicationContext,
              presentationContexts: pdu.presentationContexts.map((pc) => {
                const ts = opts.transferSyntax ?? pc.transferSyntaxes[0];
                return pc.transferSyntaxes.includes(ts) ? { id: pc.id, result: 0 as const, transferSyntax: ts } : { id: pc.id, result: 4 as const, transferSyntax: ts };
              }),
              userInformation: { maxPduLength: opts.maxPduLength ?? 16384, implementationClassUid: '1.2.3', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
            }),
          );
        } else if (pdu.type === 'P-DATA-TF') {
          pduLengths.push(raw.readUInt32BE(2));
          for (const pdv of pdu.pdvs) {
            if (pdv.isCommand) command.push(Buffer.from(pdv.data));
            else {
              dataset.push(Buffer.from(pdv.data));
              const fault = opts.fault?.(++fragments);
              if (fault === 'close') return void socket.destroy();
              if (fault === 'reset') return void socket.resetAndDestroy();
              if (fault === 'silent') silenced.add(decodeCommand(Buffer.concat(command)).AffectedSOPInstanceUID ?? '');
            }
            if (!pdv.isLast || (pdv.isCommand && decodeCommand(Buffer.concat(command)).CommandDataSetType !== 0x0101)) continue;
            const rq = decodeCommand(Buffer.concat(command));
            const bytes = Buffer.concat(dataset);
            command = [];
            dataset = [];
            stores.push({ command: rq, dataset: bytes });
            if (silenced.delete(rq.AffectedSOPInstanceUID ?? '')) continue;
            const status = opts.status?.(rq, bytes) ?? 0;
            const rsp = encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: pdv.contextId, isCommand: true, isLast: true, data: encodeCommand(responseFor(rq, status)) }] });
            if (opts.delayMs) setTimeout(() => socket.writable && socket.write(rsp), opts.delayMs);
            else socket.write(rsp);
          }
        } else if (pdu.type === 'A-RELEASE-RQ') {
          socket.end(encodePdu({ type: 'A-RELEASE-RP' }));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    pduLengths,
    stores,
    get maxConcurrent() {
      return result.maxConcurrent;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
