import test from 'ava';
import fc from 'fast-check';
import { decodePdu, encodePdu, PduDecodeError } from '../../protocol/pdu.ts';
import { DEFAULT_MAX_ASSOCIATE_PDU_LENGTH, PDU_HARD_CAP, PduFramer } from '../../protocol/pdu-framer.ts';
import type { Pdu } from '../../protocol/pdu.types.ts';
import { AbortReason } from '../../protocol/pdu.types.ts';
import { norm, pduArb } from './pdu-arbitraries.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const header = (type: number, length: number): Buffer => {
  const h = Buffer.from([type, 0, 0, 0, 0, 0]);
  h.writeUInt32BE(length, 2);
  return h;
};
const pdata = (size: number, contextId = 1): Buffer =>
  encodePdu({ type: 'P-DATA-TF', pdvs: [{ contextId, isCommand: false, isLast: true, data: new Uint8Array(size).fill(size & 0xff) }] });
const releaseRq = encodePdu({ type: 'A-RELEASE-RQ' });
const abort = encodePdu({ type: 'A-ABORT', source: 2, reason: 6 });

test('a PDU inside one chunk is returned as a view of that chunk', (t) => {
  const f = new PduFramer({ maxPduLength: 16384 });
  const chunk = Buffer.concat([pdata(100), releaseRq, abort, pdata(3)]);
  const out = f.push(chunk);
  t.is(out.length, 4);
  t.deepEqual(out.map((b) => b.length), [112, 10, 10, 15]);
  for (const b of out) t.is(b.buffer, chunk.buffer);
  t.deepEqual(Buffer.concat(out), chunk);
  t.is(f.bufferedBytes, 0);
});

test('chunks split anywhere, even inside the 6-byte header, reassemble exactly', (t) => {
  const stream = Buffer.concat([pdata(50), releaseRq, pdata(7, 3)]);
  for (let cut = 1; cut < stream.length; cut++) {
    const f = new PduFramer({ maxPduLength: 0 });
    const out = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
    t.deepEqual(Buffer.concat(out), stream);
    t.is(out.length, 3);
  }
  const f = new PduFramer({ maxPduLength: 0 });
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) {
    out.push(...f.push(stream.subarray(i, i + 1)));
    t.is(f.bufferedBytes, i + 1 - out.reduce((n, b) => n + b.length, 0));
  }
  t.deepEqual(out.map((b) => decodePdu(b).type), ['P-DATA-TF', 'A-RELEASE-RQ', 'P-DATA-TF']);
  t.deepEqual(f.push(new Uint8Array(0)), []);
});

test('bufferedBytes counts bytes not yet returned', (t) => {
  const f = new PduFramer({ maxPduLength: 0 });
  const p = pdata(20);
  t.deepEqual(f.push(p.subarray(0, 4)), []);
  t.is(f.bufferedBytes, 4);
  t.deepEqual(f.push(p.subarray(4, 20)), []);
  t.is(f.bufferedBytes, 20);
  const out = f.push(Buffer.concat([p.subarray(20), releaseRq.subarray(0, 3)]));
  t.deepEqual(out, [p]);
  t.is(f.bufferedBytes, 3);
});

test('an unknown PDU type is rejected as soon as its header is seen (reason 1)', (t) => {
  const f = new PduFramer({ maxPduLength: 16384 });
  t.deepEqual(f.push(Buffer.from([0x09, 0, 0, 0])), []);
  const err = t.throws(() => f.push(Buffer.from([0, 200])), { instanceOf: PduDecodeError });
  t.is(err.reason, AbortReason.UNRECOGNIZED_PDU);
  t.is(err.code, 'UNRECOGNIZED_PDU_TYPE');
  // The stream is dead afterwards.
  t.throws(() => f.push(releaseRq), { instanceOf: PduDecodeError });
});

test('P-DATA-TF longer than our maximum length is rejected from the header alone', (t) => {
  const f = new PduFramer({ maxPduLength: 16384 });
  t.is(f.push(pdata(16384 - 6)).length, 1); // PDU-length exactly 16384 is allowed
  const err = t.throws(() => f.push(header(4, 16385)), { instanceOf: PduDecodeError });
  t.is(err.code, 'PDU_TOO_LARGE');
  t.is(err.reason, AbortReason.INVALID_PDU_PARAMETER_VALUE);
  t.regex(err.message, /16385.*16384/);
});

test('maximum length 0 means unlimited up to the 64 MiB hard cap', (t) => {
  const f = new PduFramer({ maxPduLength: 0 });
  t.deepEqual(f.push(header(4, PDU_HARD_CAP)), []);
  t.is(f.bufferedBytes, 6);
  const g = new PduFramer({ maxPduLength: 0 });
  t.throws(() => g.push(header(4, PDU_HARD_CAP + 1)), { instanceOf: PduDecodeError, message: /exceeds/ });
  const h = new PduFramer({ maxPduLength: 0xffffffff });
  t.throws(() => h.push(header(4, 0xffffffff)), { instanceOf: PduDecodeError });
});

test('A-ASSOCIATE-RQ/AC are capped at 1 MiB by default, configurable', (t) => {
  for (const type of [1, 2]) {
    t.deepEqual(new PduFramer({ maxPduLength: 4096 }).push(header(type, DEFAULT_MAX_ASSOCIATE_PDU_LENGTH)), []);
    const err = t.throws(() => new PduFramer({ maxPduLength: 4096 }).push(header(type, DEFAULT_MAX_ASSOCIATE_PDU_LENGTH + 1)), { instanceOf: PduDecodeError });
    t.is(err.code, 'PDU_TOO_LARGE');
    t.throws(() => new PduFramer({ maxPduLength: 0, maxAssociatePduLength: 1000 }).push(header(type, 1001)), { instanceOf: PduDecodeError });
  }
});

test('A-ASSOCIATE-RJ, A-RELEASE-RQ/RP and A-ABORT must declare length 4', (t) => {
  for (const type of [3, 5, 6, 7]) {
    for (const length of [0, 3, 5, 0xffffffff]) {
      const err = t.throws(() => new PduFramer({ maxPduLength: 0 }).push(header(type, length)), { instanceOf: PduDecodeError });
      t.is(err.code, 'BAD_PDU_LENGTH');
      t.is(err.reason, AbortReason.INVALID_PDU_PARAMETER_VALUE);
    }
  }
});

test('many tiny chunks stay linear', (t) => {
  const p = pdata(512 * 1024);
  const f = new PduFramer({ maxPduLength: 0 });
  const start = performance.now();
  const out: Buffer[] = [];
  for (let i = 0; i < p.length; i += 3) out.push(...f.push(p.subarray(i, i + 3)));
  t.true(performance.now() - start < 2000);
  t.is(out.length, 1);
  t.true(out[0].equals(p));
  t.is(f.bufferedBytes, 0);
});

test('property: splitting a stream of PDUs at arbitrary points yields exactly the same PDUs', (t) => {
  fc.assert(fc.property(
    fc.array(pduArb, { minLength: 1, maxLength: 6 }),
    fc.array(fc.nat(), { maxLength: 12 }),
    (pdus: Pdu[], cutSeeds: number[]) => {
      const encoded = pdus.map(encodePdu);
      const stream = Buffer.concat(encoded);
      const cuts = [...new Set(cutSeeds.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const f = new PduFramer({ maxPduLength: 0 });
      const out: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, stream.length]) {
        out.push(...f.push(stream.subarray(prev, c)));
        prev = c;
      }
      t.is(out.length, encoded.length);
      out.forEach((b, i) => t.true(b.equals(encoded[i])));
      t.deepEqual(out.map((b) => norm(decodePdu(b))), pdus.map(norm));
      return f.bufferedBytes === 0;
    },
  ), { numRuns: fuzzRuns(300) });
});

test('consumed chunks are released even when the stream never ends on a chunk boundary', (t) => {
  // Regression: 64 KiB socket chunks carrying 16 KiB PDUs with a partial PDU always pending at the end
  // of the last chunk; the framer used to keep every consumed chunk (up to 1024, 64 MiB) alive.
  const pdv = { contextId: 1, isCommand: false, isLast: false, data: new Uint8Array(16378) };
  const stream = Buffer.concat(Array.from({ length: 64 }, () => encodePdu({ type: 'P-DATA-TF', pdvs: [pdv] })));
  const framer = new PduFramer({ maxPduLength: 16384 });
  let pdus = 0;
  for (let off = 0; off < stream.length - 100; off += 65536) {
    pdus += framer.push(Buffer.from(stream.subarray(off, Math.min(off + 65536, stream.length - 100)))).length;
  }
  t.is(pdus, 63);
  t.true(framer.bufferedBytes < 16390);
  t.true(framer.retainedChunks <= 2, `framer still references ${framer.retainedChunks} chunks`);
});
