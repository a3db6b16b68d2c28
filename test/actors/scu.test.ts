// Our SCU against a scripted acceptor built from the same codec: the peer's maximum PDU length is
// honoured on every P-DATA-TF we send, and the dataset arrives whole and in order.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { readPart10File } from '../../actors/part10-file.ts';
import { ScuAssociation } from '../../actors/scu.ts';
import { decodeCommand, encodeCommand, responseFor } from '../../protocol/dimse.ts';
import { decodePdu, encodePdu } from '../../protocol/pdu.ts';
import { PduFramer } from '../../protocol/pdu-framer.ts';
import type { AssociateRq } from '../../protocol/pdu.types.ts';
import { datasetOf, makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import { tempDir } from '../helpers/processes.ts';

const silent = pino({ level: 'silent' });

/** An acceptor that announces `maxPduLength`, records every PDU's length, and answers C-STOREs with Success. */
async function scriptedAcceptor(maxPduLength: number) {
  const pduLengths: number[] = [];
  const dataset: Buffer[] = [];
  const server = createServer((socket) => {
    const framer = new PduFramer({ maxPduLength: 1 << 24 });
    let command: Buffer[] = [];
    socket.on('data', (chunk) => {
      for (const raw of framer.push(chunk)) {
        const pdu = decodePdu(raw);
        if (pdu.type === 'A-ASSOCIATE-RQ') {
          const rq = pdu as AssociateRq;
          socket.write(
            encodePdu({
              type: 'A-ASSOCIATE-AC', protocolVersion: 1, calledAeTitle: rq.calledAeTitle, callingAeTitle: rq.callingAeTitle,
              applicationContext: rq.applicationContext,
              presentationContexts: rq.presentationContexts.map((pc) => ({ id: pc.id, result: 0, transferSyntax: pc.transferSyntaxes[0] })),
              userInformation: { maxPduLength, implementationClassUid: '1.2.3', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
            }),
          );
        } else if (pdu.type === 'P-DATA-TF') {
          pduLengths.push(raw.readUInt32BE(2));
          for (const pdv of pdu.pdvs) {
            if (pdv.isCommand) {
              command.push(Buffer.from(pdv.data));
            } else {
              dataset.push(Buffer.from(pdv.data));
              if (pdv.isLast) {
                const rq = decodeCommand(Buffer.concat(command));
                command = [];
                const rsp = encodeCommand(responseFor(rq, 0));
                socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: pdv.contextId, isCommand: true, isLast: true, data: rsp }] }));
              }
            }
          }
        } else if (pdu.type === 'A-RELEASE-RQ') {
          socket.end(encodePdu({ type: 'A-RELEASE-RP' }));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, pduLengths, dataset: () => Buffer.concat(dataset) };
}

for (const max of [4096, 16352, 60000]) {
  test(`every P-DATA-TF we send fits the peer's maximum PDU length (${max})`, async (t) => {
    const peer = await scriptedAcceptor(max);
    t.teardown(() => peer.server.close());
    const path = join(tempDir(), 'ct.dcm');
    const bytes = makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 300_000 });
    writeFileSync(path, bytes);
    const file = await readPart10File(path);
    const scu = await ScuAssociation.open({
      host: '127.0.0.1', port: peer.port, callingAeTitle: 'ME', calledAeTitle: 'PEER',
      contexts: [{ abstractSyntax: file.sopClassUid, transferSyntaxes: [file.transferSyntaxUid] }], logger: silent,
    });
    const outcome = await scu.store(file);
    await scu.release();
    t.is(outcome.status, 0);
    t.true(peer.pduLengths.length > 300_000 / max);
    t.true(Math.max(...peer.pduLengths) <= max, `largest PDU ${Math.max(...peer.pduLengths)} > ${max}`);
    t.is(Math.max(...peer.pduLengths), max, 'fragments are as large as allowed');
    t.true(peer.dataset().equals(Buffer.from(datasetOf(bytes))));
  });
}
