import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeText, parseCharset } from '../../protocol/charset.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { RewriteError, topLevelElements } from '../../protocol/dataset-rewrite.ts';
import { transcodeToUtf8 } from '../../protocol/dataset-transcode.ts';
import { part10Header } from '../../protocol/part10.ts';
import { encodeDataset, encodingOf, TS } from '../helpers/dicom-files.ts';
import type { Element } from '../helpers/dicom-files.ts';

const exec = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'dataset-transcode-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const IR87 = parseCharset('\\ISO 2022 IR 87');
const jis = (text: string, vr = 'LO') => Buffer.from(encodeText(text, IR87, vr)!);
const H31 = 'Yamada^Tarou=山田^太郎=やまだ^たろう';

/** An IR 87 dataset with text at the top level, in defined- and undefined-length sequences and items, and a group length. */
function elements(): Element[] {
  const code = (meaning: string): Element[] => [
    { tag: 0x00080100, vr: 'SH', value: 'T-A0100' },
    { tag: 0x00080104, vr: 'LO', value: jis(meaning) },
  ];
  const group10: Element[] = [
    { tag: 0x00100010, vr: 'PN', value: jis(H31, 'PN') },
    { tag: 0x00100020, vr: 'LO', value: 'P-1' },
    { tag: 0x00104000, vr: 'LT', value: jis('所見\r\nなし', 'LT') },
  ];
  const groupLength = encodeDataset(group10, { explicitVr: true, littleEndian: true }).length;
  return [
    { tag: 0x00080005, vr: 'CS', value: '\\ISO 2022 IR 87' },
    { tag: 0x00080018, vr: 'UI', value: '1.2.3.4' },
    { tag: 0x00081030, vr: 'LO', value: jis('頭部') },
    { tag: 0x00081032, vr: 'SQ', value: [{ elements: code('頭部単純') }] },
    { tag: 0x00081110, vr: 'SQ', undefinedLength: true, value: [{ undefinedLength: true, elements: [{ tag: 0x00081150, vr: 'UI', value: '1.2.3' }, ...code('胸部')] }] },
    { tag: 0x00100000, vr: 'UL', value: [groupLength] },
    ...group10,
  ];
}

for (const ts of [TS.implicitLE, TS.explicitLE, TS.explicitBE]) {
  test(`${ts}: every text value, nested ones too, becomes UTF-8 and DCMTK reads the result`, async (t) => {
    const header = encodeDataset(elements(), encodingOf(ts));
    const out = transcodeToUtf8(header, ts, IR87);
    const keys = parseHeader(out, ts);
    t.is(keys.specificCharacterSet, 'ISO_IR 192');
    t.is(keys.patientName, H31);
    t.is(keys.studyDescription, '頭部');
    t.is(keys.dataset.PatientComments, '所見\r\nなし');
    // The group length follows the group's new size.
    const spans = topLevelElements(out, ts);
    const g10 = spans.filter((s) => s.tag >>> 16 === 0x0010 && (s.tag & 0xffff) !== 0).reduce((n, s) => n + s.end - s.start, 0);
    const gl = spans.find((s) => s.tag === 0x00100000)!;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    t.is(view.getUint32(gl.valueStart, ts !== TS.explicitBE), g10);

    const file = join(dir, `${ts}.dcm`);
    writeFileSync(file, Buffer.concat([part10Header({ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3.4', transferSyntaxUid: ts, implementationClassUid: '1.2.3', implementationVersionName: '' }), out]));
    const { stdout, stderr } = await exec('dcmdump', ['+U8', '-q', file], { env: { ...process.env, TCP_NODELAY: '1' } });
    t.is(stderr, '');
    t.regex(stdout, /\(0008,0005\) CS \[ISO_IR 192\]/);
    t.regex(stdout, /\(0008,0104\) LO \[頭部単純\]/);
    t.regex(stdout, /\(0008,0104\) LO \[胸部\]/);
    t.regex(stdout, /\(0010,0010\) PN \[Yamada\^Tarou=山田\^太郎=やまだ\^たろう\]/);
    t.notRegex(stdout, /\x1b/);
  });
}

test('absent (0008,0005) is added as ISO_IR 192; an unknown source character set is refused', (t) => {
  const header = encodeDataset([
    { tag: 0x00080018, vr: 'UI', value: '1.2.3.4' },
    { tag: 0x00100010, vr: 'PN', value: 'DOE^JOHN' },
  ], encodingOf(TS.explicitLE));
  const out = transcodeToUtf8(header, TS.explicitLE, parseCharset(undefined));
  t.deepEqual(topLevelElements(out, TS.explicitLE).map((s) => s.tag), [0x00080005, 0x00080018, 0x00100010]);
  t.is(parseHeader(out, TS.explicitLE).specificCharacterSet, 'ISO_IR 192');
  const err = t.throws(() => transcodeToUtf8(header, TS.explicitLE, parseCharset('ISO_IR 999')), { instanceOf: RewriteError });
  t.regex(err?.message ?? '', /"ISO_IR 999" is unknown/);
});
