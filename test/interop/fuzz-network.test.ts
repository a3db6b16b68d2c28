// The network edge under fuzzing: mutated PDUs, random bytes and valid PDUs in invalid orders, sent
// to a live router over real sockets. Each connection must end (A-ABORT, or a close), never hang,
// the process must never crash, and the next association must be served. Bounded here;
// `npm run fuzz` runs the same properties much longer (FUZZ_RUNS).
import test from 'ava';
import fc from 'fast-check';
import { connect } from 'node:net';
import { encodeCommand } from '../../protocol/dimse.ts';
import { encodePdu } from '../../protocol/pdu.ts';
import type { Pdu } from '../../protocol/pdu.types.ts';
import { VERIFICATION_SOP_CLASS } from '../../protocol/uids.ts';
import { routerWith, silent } from '../helpers/in-process-router.ts';
import { echoRq } from '../helpers/raw-peer.ts';
import { ScuAssociation } from '../../actors/net/scu.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);

const echoCommand = encodeCommand({ CommandField: 0x0030, MessageID: 1, AffectedSOPClassUID: VERIFICATION_SOP_CLASS, CommandDataSetType: 0x0101 });
const VALID: Pdu[] = [
  echoRq(),
  { type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: true, isLast: true, data: echoCommand }] },
  { type: 'P-DATA-TF', pdvs: [{ contextId: 1, isCommand: false, isLast: true, data: new Uint8Array(10) }] },
  { type: 'A-RELEASE-RQ' },
  { type: 'A-RELEASE-RP' },
  { type: 'A-ABORT', source: 0, reason: 0 },
  { type: 'A-ASSOCIATE-RJ', result: 1, source: 1, reason: 1 },
];
const ENCODED = VALID.map((p) => encodePdu(p));

/** Sends `bytes` on a fresh connection; resolves when the router ends it (or we give up and say so). */
function exchange(port: number, chunks: Uint8Array[]): Promise<'closed' | 'hung'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      for (const c of chunks) socket.write(c);
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('hung');
    }, 4000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve('closed');
    });
  });
}

/** A mutation of a valid PDU stream: flipped bytes, overwritten length fields, truncation, extension. */
const mutated = fc
  .tuple(fc.array(fc.integer({ min: 0, max: ENCODED.length - 1 }), { minLength: 1, maxLength: 5 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.option(fc.nat(), { nil: undefined }), fc.uint8Array({ maxLength: 64 }))
  .map(([order, flips, cut, tail]) => {
    const bytes = Buffer.concat(order.map((i) => ENCODED[i]));
    for (const [at, v] of flips) bytes[at % bytes.length] = v;
    const body = cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
    return [Buffer.concat([body, tail])];
  });

test('mutated PDU streams, random bytes and valid PDUs in invalid orders: every connection ends, the router keeps serving', async (t) => {
  // A short ARTIM and network timeout: a stream that stops half-way is ended by the router, not by us.
  const r = await routerWith([], 'rules: []\n', { listener: { timeouts: { artimSeconds: 1, idleSeconds: 1, dimseSeconds: 5 } } });
  t.teardown(() => r.stop(0));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  const streams = fc.oneof(mutated, fc.array(fc.uint8Array({ minLength: 1, maxLength: 512 }), { minLength: 1, maxLength: 4 }));
  const samples = fc.sample(streams, { numRuns: RUNS });
  // Several at once, as an attacker would.
  const outcomes: string[] = [];
  for (let i = 0; i < samples.length; i += 10) {
    outcomes.push(...(await Promise.all(samples.slice(i, i + 10).map((chunks) => exchange(r.port, chunks)))));
  }
  const hung = outcomes.filter((o) => o === 'hung').length;
  t.log(`${samples.length} hostile connections, all ended by the router`);
  t.is(hung, 0, 'a connection outlived ARTIM and the network timeout');
  t.deepEqual(unhandled, []);
  // The router still serves a well-behaved SCU.
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port: r.port, callingAeTitle: 'AFTER', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: VERIFICATION_SOP_CLASS, transferSyntaxes: ['1.2.840.10008.1.2'] }], logger: silent,
  });
  t.is((await scu.echo()).status, 0);
  await scu.release();
  t.is(r.spool.count(), 0, 'nothing hostile was stored');
});
