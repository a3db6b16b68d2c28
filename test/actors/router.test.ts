// The router in-process against raw and malformed peers: bad input gets a clear, standard
// answer (A-ABORT, a failure status) and harms nothing else.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { startRouter } from '../../actors/router.ts';
import { ScuAssociation } from '../../actors/net/scu.ts';
import { parseConfig } from '../../config/config.ts';
import { encodeCommand } from '../../protocol/dimse.ts';
import { encodePdu } from '../../protocol/pdu.ts';
import { VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';
import { echoRq, rawPeer } from '../helpers/raw-peer.ts';
import { makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import { tempDir } from '../helpers/processes.ts';
import { storeFile } from '../helpers/in-process-router.ts';

const silent = pino({ level: 'silent' });

async function router(listener: Record<string, unknown> = {}) {
  const dir = tempDir();
  const file = join(dir, 'router.yaml');
  const config = parseConfig(
    stringify({ storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1', ...listener }] }),
    file,
  );
  config.listeners[0].port = 0; // any free port
  const running = await startRouter(config, { logger: silent });
  return { ...running, port: running.ports.get('main')!, dir };
}

async function echoWorks(port: number): Promise<boolean> {
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port, callingAeTitle: 'CHECK', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
  });
  const outcome = await scu.echo();
  await scu.release();
  return outcome.status === 0;
}

// After an A-ABORT the router waits (ARTIM) for the peer to close, then closes itself; the raw peers
// here never close, so a short ARTIM keeps these tests quick while still proving the router closes.
const QUICK_ARTIM = { timeouts: { artimSeconds: 0.5, idleSeconds: 60, dimseSeconds: 60 } };

test('an unknown PDU type is answered A-ABORT (provider, unrecognized PDU); the next association is served', async (t) => {
  const r = await router(QUICK_ARTIM);
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  peer.socket.write(Buffer.from([0x09, 0, 0, 0, 0, 4, 1, 2, 3, 4]));
  t.deepEqual(await peer.next(1), { type: 'A-ABORT', source: 2, reason: 1 });
  await peer.closed;
  t.true(await echoWorks(r.port));
});

test('a P-DATA-TF larger than our maximum PDU length is aborted', async (t) => {
  const r = await router({ maxPduLength: 16384, ...QUICK_ARTIM });
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  peer.socket.write(encodePdu(echoRq()));
  t.is((await peer.next(1)).type, 'A-ASSOCIATE-AC');
  const big = encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: new Uint8Array(20000) }] });
  peer.socket.write(big);
  t.like(await peer.next(2), { type: 'A-ABORT', source: 2 });
  await peer.closed;
  t.true(await echoWorks(r.port));
});

test('a PDU out of order (P-DATA before A-ASSOCIATE-RQ) is aborted', async (t) => {
  const r = await router(QUICK_ARTIM);
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  peer.socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: new Uint8Array(8) }] }));
  t.like(await peer.next(1), { type: 'A-ABORT', source: 2 });
  await peer.closed;
});

test('a PDV on a presentation context that was not accepted is aborted', async (t) => {
  const r = await router(QUICK_ARTIM);
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  peer.socket.write(encodePdu(echoRq()));
  await peer.next(1);
  const echo = encodeCommand({ CommandField: 0x0030, MessageID: 1, AffectedSOPClassUID: VERIFICATION_SOP_CLASS, CommandDataSetType: 0x0101 });
  peer.socket.write(encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId: 3, isCommand: true, isLast: true, data: echo }] }));
  t.like(await peer.next(2), { type: 'A-ABORT' });
  await peer.closed;
});

test('a connection that never sends A-ASSOCIATE-RQ is closed by ARTIM', async (t) => {
  const r = await router({ timeouts: { artimSeconds: 0.3, idleSeconds: 60, dimseSeconds: 60 } });
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  const started = Date.now();
  await peer.closed;
  t.true(Date.now() - started >= 250);
  t.is(peer.received.length, 0);
});

test('an association that stalls mid-PDU is aborted after the network timeout', async (t) => {
  const r = await router({ timeouts: { artimSeconds: 30, idleSeconds: 0.4, dimseSeconds: 60 } });
  t.teardown(() => r.stop(0));
  const peer = rawPeer(r.port);
  await peer.connected;
  peer.socket.write(encodePdu(echoRq()));
  await peer.next(1);
  peer.socket.write(Buffer.from([0x04, 0, 0, 0, 0x40, 0])); // a P-DATA-TF header promising 16 KiB, then nothing
  await peer.closed;
  t.pass();
});

test('C-STORE of a dataset cut short: C000 with a comment, nothing indexed', async (t) => {
  const r = await router();
  t.teardown(() => r.stop(0));
  const whole = makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 4096 });
  const path = join(r.dir, 'cut.dcm');
  writeFileSync(path, whole.subarray(0, whole.length - 100));
  const outcome = await storeFile(r.port, path, 'SENDER');
  t.is(outcome.status, 0xc000);
  t.regex(outcome.errorComment ?? '', /incomplete/);
  t.is(r.spool.count(), 0);
});

test('C-STORE whose dataset SOP Instance UID differs from the command: C000, nothing indexed', async (t) => {
  const r = await router();
  t.teardown(() => r.stop(0));
  const path = join(r.dir, 'mismatch.dcm');
  const bytes = makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, sopInstanceUid: '1.2.3.4.5' });
  // The first occurrence is the file meta's copy (what the command will say); the dataset keeps .5.
  writeFileSync(path, Buffer.from(bytes.toString('latin1').replace('1.2.3.4.5\0', '1.2.3.4.6\0'), 'latin1'));
  const outcome = await storeFile(r.port, path, 'SENDER');
  t.is(outcome.status, 0xc000);
  t.is(r.spool.count(), 0);
});

test('C-STORE Success means indexed: the record is there when the response arrives', async (t) => {
  const r = await router();
  t.teardown(() => r.stop(0));
  const path = join(r.dir, 'ok.dcm');
  writeFileSync(path, makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.implicitLE, patientId: 'P1' }));
  const outcome = await storeFile(r.port, path, 'SENDER');
  t.is(outcome.status, 0);
  const rec = r.spool.get((await readPart10File(path)).sopInstanceUid);
  t.is(rec?.patientId, 'P1');
  t.is(rec?.callingAeTitle, 'SENDER');
  t.is(rec?.listener, 'main');
});

test('association attempts are rate-limited per source address; another address is still served', async (t) => {
  const r = await router({ rateLimit: { attempts: 3, perSeconds: 60 } });
  t.teardown(() => r.stop(0));
  // Three attempts from 127.0.0.1 are admitted; the fourth is dropped before any DICOM is spoken.
  for (let i = 0; i < 3; i++) t.true(await echoWorks(r.port));
  const flood = rawPeer(r.port);
  await flood.connected;
  flood.socket.write(encodePdu(echoRq()));
  await flood.closed;
  t.is(flood.received.length, 0, 'no answer at all to a flooding address');
  // Another source address (127.0.0.2, loopback too) keeps its own share.
  const other = rawPeer(r.port, '127.0.0.2');
  await other.connected;
  other.socket.write(encodePdu(echoRq()));
  t.is((await other.next(1)).type, 'A-ASSOCIATE-AC');
  other.socket.destroy();
});
