// The Storage Commitment datasets: what DCMTK writes we read, what we write DCMTK reads, and a
// malformed Action Information gets the N-ACTION status and Error Comment PS3.7 10.1.4 / PS3.4 J.3.2 call for.
import test from 'ava';
import fc from 'fast-check';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import {
  ActionInformationError, decodeCommitmentRequest, decodeCommitmentResult, encodeCommitmentRequest, encodeCommitmentResult, eventTypeOf,
} from '../../protocol/storage-commitment.ts';
import { part10Header } from '../../protocol/part10.ts';
import { Status } from '../../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT } from '../../protocol/uids.ts';
import { run, tempDir } from '../helpers/processes.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const CT = '1.2.840.10008.5.1.4.1.1.2';

for (const ts of [IMPLICIT, EXPLICIT]) {
  test(`Action Information written by DCMTK (dump2dcm) is read, in ${ts}`, async (t) => {
    const dir = tempDir('stgcmt-');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const dump = join(dir, 'action.dump');
    writeFileSync(dump, [
      '(0008,1195) UI [1.2.3.4.5]',
      '(0008,1199) SQ (Sequence with undefined length)',
      '  (fffe,e000) na (Item with undefined length)',
      `    (0008,1150) UI [${CT}]`,
      '    (0008,1155) UI [1.2.3.4.5.1]',
      '  (fffe,e00d) na (ItemDelimitationItem)',
      '  (fffe,e000) na (Item with undefined length)',
      `    (0008,1150) UI [${CT}]`,
      '    (0008,1155) UI [1.2.3.4.5.2]',
      '  (fffe,e00d) na (ItemDelimitationItem)',
      '(fffe,e0dd) na (SequenceDelimitationItem)',
    ].join('\n'));
    const out = join(dir, 'action.dcm');
    const r = await run('dump2dcm', ['-F', '+t=', ts === IMPLICIT ? '+ti' : '+te', dump, out]);
    if (r.code !== 0) return void t.fail(r.stderr);
    const bytes = readFileSync(out);
    t.deepEqual(decodeCommitmentRequest(bytes, ts), {
      transactionUid: '1.2.3.4.5',
      referenced: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.4.5.1' }, { sopClassUid: CT, sopInstanceUid: '1.2.3.4.5.2' }],
    });
  });

  test(`Event Information we write is read by DCMTK (dcmdump) and by us, in ${ts}`, async (t) => {
    const result = { transactionUid: '1.2.3.9', committed: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.9.1' }], failed: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.9.2', failureReason: 0x0112 }] };
    const bytes = encodeCommitmentResult(result, ts);
    t.deepEqual(decodeCommitmentResult(bytes, ts), result);
    t.is(eventTypeOf(result), 2);
    const dir = tempDir('stgcmt-');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'event.dcm');
    writeFileSync(file, Buffer.concat([part10Header({ sopClassUid: '1.2.840.10008.1.20.1', sopInstanceUid: '1.2.840.10008.1.20.1.1', transferSyntaxUid: ts, implementationClassUid: '1.2.3', implementationVersionName: 'T' }), bytes]));
    const r = await run('dcmdump', ['-q', file]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /\(0008,1195\) UI \[1\.2\.3\.9\]/);
    t.regex(r.stdout, /\(0008,1198\) SQ/);
    t.regex(r.stdout, /\(0008,1197\) US 274/);
    t.regex(r.stdout, /\(0008,1155\) UI \[1\.2\.3\.9\.1\]/);
    await readPart10File(file); // and it is a well-formed Part-10 file for our own reader too
  });
}

test('an all-committed result is Event Type 1 without a Failed SOP Sequence', (t) => {
  const result = { transactionUid: '1.2.3.10', committed: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.10.1' }], failed: [] };
  const back = decodeCommitmentResult(encodeCommitmentResult(result, EXPLICIT), EXPLICIT);
  t.deepEqual(back, result);
  t.is(eventTypeOf(result), 1);
});

test('malformed Action Information: missing or invalid attributes get the N-ACTION failure status and say which', (t) => {
  const cases: [Uint8Array, number, RegExp][] = [
    [encodeCommitmentRequest({ transactionUid: '1.2.3', referenced: [] }, EXPLICIT), Status.MISSING_ATTRIBUTE_VALUE, /Referenced SOP Sequence \(0008,1199\) is empty/],
    [encodeCommitmentRequest({ transactionUid: '01.2', referenced: [{ sopClassUid: CT, sopInstanceUid: '1.2' }] }, EXPLICIT), Status.INVALID_ARGUMENT_VALUE, /Transaction UID .* not a valid UID/],
    [encodeCommitmentRequest({ transactionUid: '1.2.3', referenced: [{ sopClassUid: CT, sopInstanceUid: 'x' }] }, EXPLICIT), Status.INVALID_ARGUMENT_VALUE, /item 1: Referenced SOP Instance UID/],
    [Uint8Array.of(0x08, 0x00, 0x99, 0x11, 0xff, 0xff), Status.INVALID_ARGUMENT_VALUE, /cannot be decoded/],
  ];
  for (const [bytes, status, message] of cases) {
    const err = t.throws(() => decodeCommitmentRequest(bytes, EXPLICIT), { instanceOf: ActionInformationError });
    t.is(err!.status, status);
    t.regex(err!.message, message);
  }
  const noUid = encodeCommitmentRequest({ transactionUid: '1.2.3', referenced: [{ sopClassUid: CT, sopInstanceUid: '1.2' }] }, EXPLICIT).subarray(14);
  const err = t.throws(() => decodeCommitmentRequest(noUid, EXPLICIT), { instanceOf: ActionInformationError });
  t.is(err!.status, Status.MISSING_ATTRIBUTE);
  t.regex(err!.message, /Transaction UID \(0008,1195\) is missing/);
});

test('property: any bytes as Action Information give a request or an ActionInformationError with a failure status, never anything else', (t) => {
  const valid = encodeCommitmentRequest({ transactionUid: '1.2.3.4', referenced: [{ sopClassUid: CT, sopInstanceUid: '1.2.3.4.1' }, { sopClassUid: CT, sopInstanceUid: '1.2.3.4.2' }] }, EXPLICIT);
  // Random bytes, and the valid dataset cut short or with bytes flipped.
  const inputs = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.nat({ max: valid.length }).map((n) => valid.subarray(0, n)),
    fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((flips) => {
      const b = Uint8Array.from(valid);
      for (const [at, v] of flips) b[at] = v;
      return b;
    }),
  );
  fc.assert(fc.property(inputs, fc.constantFrom(EXPLICIT, IMPLICIT), (bytes, ts) => {
    try {
      const r = decodeCommitmentRequest(bytes, ts);
      return r.referenced.length > 0 && typeof r.transactionUid === 'string';
    } catch (err) {
      return err instanceof ActionInformationError && err.status >= 0x0100 && err.message.length > 0;
    }
  }), { numRuns: fuzzRuns(300) });
  t.pass();
});
