import test from 'ava';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Part10Error, part10Header, readPart10Header } from '../../protocol/part10.ts';
import type { Part10Meta } from '../../protocol/part10.ts';
import { makeInstance, SOP, TS } from '../helpers/dicom-files.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const META: Part10Meta = {
  sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
  sopInstanceUid: '1.2.3.4.5.6.7', // odd length: NUL-padded
  transferSyntaxUid: '1.2.840.10008.1.2',
  implementationClassUid: '1.2.826.0.1.3680043.9.7',
  implementationVersionName: 'ROUTER_0.1',
  sourceAeTitle: 'MODALITY',
  sendingAeTitle: 'SENDER',
  receivingAeTitle: 'ROUTER1', // odd length: space-padded
};

type Parsed = { tag: string; vr: string; value: Buffer };

/** Independent reading of group 0002 as Explicit VR LE elements. */
function elements(bytes: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let o = 132;
  while (o < bytes.length) {
    const tag = `${bytes.readUInt16LE(o).toString(16).padStart(4, '0')},${bytes.readUInt16LE(o + 2).toString(16).padStart(4, '0')}`;
    const vr = bytes.toString('latin1', o + 4, o + 6);
    const long = vr === 'OB';
    const len = long ? bytes.readUInt32LE(o + 8) : bytes.readUInt16LE(o + 6);
    const start = o + (long ? 12 : 8);
    out.push({ tag, vr, value: bytes.subarray(start, start + len) });
    o = start + len;
  }
  return out;
}

test('part10Header: preamble, DICM and group 0002 laid out per PS3.10 7.1', (t) => {
  const h = part10Header(META);
  t.true(h.subarray(0, 128).every((b) => b === 0));
  t.is(h.toString('latin1', 128, 132), 'DICM');
  const els = elements(h);
  t.deepEqual(
    els.map((e) => `${e.tag} ${e.vr}`),
    ['0002,0000 UL', '0002,0001 OB', '0002,0002 UI', '0002,0003 UI', '0002,0010 UI', '0002,0012 UI', '0002,0013 SH', '0002,0016 AE', '0002,0017 AE', '0002,0018 AE'],
  );
  t.is(els[0].value.readUInt32LE(0), h.length - 144, 'group length counts the bytes after (0002,0000)');
  t.deepEqual([...els[1].value], [0x00, 0x01]);
  t.is(els[3].value.toString('latin1'), '1.2.3.4.5.6.7\0');
  t.is(els[9].value.toString('latin1'), 'ROUTER1 ');
  for (const e of els) t.is(e.value.length % 2, 0, `${e.tag} has even length`);
});

test('part10Header: optional AE titles are left out when absent or blank', (t) => {
  const h = part10Header({ ...META, sourceAeTitle: undefined, sendingAeTitle: '  ', receivingAeTitle: undefined });
  t.false(elements(h).some((e) => e.vr === 'AE'));
  t.deepEqual(readPart10Header(h).meta.receivingAeTitle, undefined);
});

test('part10Header rejects values that would make a malformed file', (t) => {
  for (const bad of [{ sopInstanceUid: '1.2.03' }, { sopClassUid: '' }, { transferSyntaxUid: '1.2.' + '3'.repeat(70) }, { receivingAeTitle: 'SEVENTEEN_CHARS__' }, { sourceAeTitle: 'A\\B' }]) {
    const err = t.throws(() => part10Header({ ...META, ...bad }), { instanceOf: Part10Error });
    t.is(err?.code, 'invalid-value');
  }
});

test('readPart10Header round-trips part10Header', (t) => {
  const h = part10Header(META);
  const dataset = Buffer.from('08000500', 'hex');
  const { meta, datasetOffset } = readPart10Header(Buffer.concat([h, dataset]));
  t.is(datasetOffset, h.length);
  t.deepEqual(meta, {
    sopClassUid: META.sopClassUid,
    sopInstanceUid: META.sopInstanceUid,
    transferSyntaxUid: META.transferSyntaxUid,
    fileMetaInformationVersion: Uint8Array.of(0, 1),
    implementationClassUid: META.implementationClassUid,
    implementationVersionName: META.implementationVersionName,
    sourceAeTitle: 'MODALITY',
    sendingAeTitle: 'SENDER',
    receivingAeTitle: 'ROUTER1',
    groupLength: h.length - 144,
  });
});

test('readPart10Header round-trips arbitrary valid metas (property)', (t) => {
  const uid = fc
    .array(fc.oneof(fc.constant('0'), fc.integer({ min: 1, max: 99999 }).map(String)), { minLength: 2, maxLength: 8 })
    .map((parts) => parts.join('.'));
  const ae = fc.stringMatching(/^[A-Z0-9_]{1,16}$/);
  fc.assert(
    fc.property(uid, uid, uid, fc.option(ae, { nil: undefined }), fc.option(ae, { nil: undefined }), (cls, inst, ts, src, rcv) => {
      const h = part10Header({ ...META, sopClassUid: cls, sopInstanceUid: inst, transferSyntaxUid: ts, sourceAeTitle: src, sendingAeTitle: undefined, receivingAeTitle: rcv });
      const { meta, datasetOffset } = readPart10Header(h);
      return datasetOffset === h.length && meta.sopClassUid === cls && meta.sopInstanceUid === inst && meta.transferSyntaxUid === ts && meta.sourceAeTitle === src && meta.receivingAeTitle === rcv;
    }),
    { numRuns: fuzzRuns(300) },
  );
  t.pass();
});

test('readPart10Header accepts a meta group without (0002,0000)', (t) => {
  const h = part10Header(META);
  const without = Buffer.concat([h.subarray(0, 132), h.subarray(144), Buffer.from('08000500', 'hex')]);
  const { meta, datasetOffset } = readPart10Header(without);
  t.is(datasetOffset, h.length - 12);
  t.is(meta.groupLength, undefined);
  t.is(meta.transferSyntaxUid, META.transferSyntaxUid);
});

test('readPart10Header names what is wrong', (t) => {
  const h = part10Header(META);
  const code = (bytes: Uint8Array) => t.throws(() => readPart10Header(bytes), { instanceOf: Part10Error })?.code;
  t.is(code(h.subarray(0, 100)), 'too-short');
  const noDicm = Buffer.from(h);
  noDicm.write('DICX', 128, 'latin1');
  t.is(code(noDicm), 'no-dicm-prefix');
  const longer = Buffer.from(h);
  longer.writeUInt32LE(longer.readUInt32LE(140) + 8, 140);
  t.is(code(Buffer.concat([longer, Buffer.from('0800050043530000', 'hex')])), 'group-length-mismatch');
  const shorter = Buffer.from(h);
  shorter.writeUInt32LE(shorter.readUInt32LE(140) - 2, 140);
  t.is(code(shorter), 'group-length-mismatch');
  const badVr = Buffer.from(h);
  badVr.write('u?', 148, 'latin1');
  t.is(code(badVr), 'bad-vr');
  const noTs = part10Header(META);
  const tsAt = noTs.indexOf(Buffer.from('02001000', 'hex'), 144); // tag (0002,0010) in LE
  t.true(tsAt > 0);
  noTs.writeUInt16LE(0x0011, tsAt + 2); // renumber (0002,0010) as (0002,0011)
  t.is(code(noTs), 'missing-element');
});

test('readPart10Header: every truncation of the meta group throws Part10Error', (t) => {
  const h = part10Header(META);
  for (let cut = 0; cut < h.length; cut++) {
    t.throws(() => readPart10Header(h.subarray(0, cut)), { instanceOf: Part10Error }, `cut at ${cut}`);
  }
});

test('readPart10Header: mutated headers either parse or throw Part10Error (property)', (t) => {
  const h = part10Header(META);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 128, max: h.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 5 }), (flips) => {
      const copy = Buffer.from(h);
      for (const [at, v] of flips) copy[at] = v;
      try {
        const r = readPart10Header(copy);
        return r.datasetOffset <= copy.length;
      } catch (err) {
        return err instanceof Part10Error;
      }
    }),
    { numRuns: fuzzRuns(2000) },
  );
  t.pass();
});

test('readPart10Header reads files written by DCMTK', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'part10-'));
  try {
    const src = join(dir, 'in.dcm');
    const out = join(dir, 'out.dcm');
    writeFileSync(src, makeInstance({ sopClassUid: SOP.mr, transferSyntaxUid: TS.explicitLE, sopInstanceUid: '1.2.3.99' }));
    execFileSync('dcmconv', ['+ti', src, out], { env: { ...process.env, TCP_NODELAY: '1' } });
    const bytes = readFileSync(out);
    const { meta, datasetOffset } = readPart10Header(bytes);
    t.is(meta.transferSyntaxUid, TS.implicitLE);
    t.is(meta.sopClassUid, SOP.mr);
    t.is(meta.sopInstanceUid, '1.2.3.99');
    t.regex(meta.implementationClassUid ?? '', /^1\.2\.276\.0\.7230010\.3\./); // DCMTK's root
    t.is(bytes.readUInt16LE(datasetOffset), 0x0008);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
