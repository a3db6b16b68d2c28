// Our SCU against a scripted acceptor built from the same codec: the peer's maximum PDU length is
// honoured on every P-DATA-TF we send, and the dataset arrives whole and in order.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { readPart10File } from '../../../actors/ingest/part10-file.ts';
import { ScuAssociation } from '../../../actors/net/scu.ts';
import { datasetOf, makeInstance, SOP, TS } from '../../helpers/dicom-files.ts';
import { tempDir } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

const silent = pino({ level: 'silent' });

for (const max of [4096, 16352, 60000]) {
  test(`every P-DATA-TF we send fits the peer's maximum PDU length (${max})`, async (t) => {
    const peer = await scriptedScp({ maxPduLength: max });
    t.teardown(peer.close);
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
    t.true(peer.stores[0].dataset.equals(Buffer.from(datasetOf(bytes))));
  });
}
