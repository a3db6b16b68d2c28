import test from 'ava';
import fc from 'fast-check';
import { TextDecoder } from 'node:util';
import { decodeText, encodeText, parseCharset } from '../../protocol/charset.ts';
import { fuzzRuns } from '../helpers/fuzz-runs.ts';

const bytes = (s: string) => Buffer.from(s.replace(/ESC/g, '\x1b'), 'latin1');

// PS3.5 Annexes H, I, J and the single-byte examples of PS3.5 (and pydicom's charset test files):
// [Specific Character Set, VR, bytes as written, text].
const VECTORS: [string, string, Buffer, string][] = [
  ['\\ISO 2022 IR 87', 'PN', bytes('Yamada^Tarou=ESC$B;3EDESC(B^ESC$BB@O:ESC(B=ESC$B$d$^$@ESC(B^ESC$B$?$m$&ESC(B'), 'Yamada^Tarou=山田^太郎=やまだ^たろう'], // H.3.1
  ['ISO 2022 IR 13\\ISO 2022 IR 87', 'PN', bytes('\xd4\xcf\xc0\xde^\xc0\xdb\xb3=ESC$B;3EDESC(J^ESC$BB@O:ESC(J=ESC$B$d$^$@ESC(J^ESC$B$?$m$&ESC(J'), 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう'], // H.3.2
  ['\\ISO 2022 IR 149', 'PN', bytes('Hong^Gildong=ESC$)C\xfb\xf3^ESC$)C\xd1\xce\xd4\xd7=ESC$)C\xc8\xab^ESC$)C\xb1\xe6\xb5\xbf'), 'Hong^Gildong=洪^吉洞=홍^길동'], // I.2
  ['\\ISO 2022 IR 58', 'PN', bytes('Zhang^XiaoDong=ESC$)A\xd5\xc5^ESC$)A\xd0\xa1\xb6\xab='), 'Zhang^XiaoDong=张^小东='], // J.2
  ['GB18030', 'PN', bytes('Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab='), 'Wang^XiaoDong=王^小东='], // J.1
  ['GBK', 'LO', bytes('\xcd\xf5\xd0\xa1\xb6\xab'), '王小东'],
  ['\\ISO 2022 IR 87\\ISO 2022 IR 159', 'LO', bytes('ESC$(D+#ESC(B'), 'ä'], // JIS X 0212 row 11
  ['ISO_IR 100', 'PN', bytes('\xc4neas^R\xfcdiger'), 'Äneas^Rüdiger'],
  ['ISO_IR 101', 'PN', bytes('Wpu\xb3kowski^Jerzy'), 'Wpułkowski^Jerzy'],
  ['ISO_IR 109', 'LO', bytes('\xa1\xc6\xf8'), 'ĦĈĝ'],
  ['ISO_IR 110', 'LO', bytes('\xa1\xa2\xbd'), 'ĄĸŊ'],
  ['ISO_IR 144', 'PN', bytes('\xbb\xee\xda\x63\x65\xdc\xd1\x79\x70\xd3'), 'Люкceмбypг'],
  ['ISO_IR 148', 'PN', bytes('\xd6zt\xfcrk^\xdeule'), 'Öztürk^Şule'],
  ['ISO_IR 126', 'PN', bytes('\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2'), 'Διονυσιος'],
  ['ISO_IR 127', 'PN', bytes('\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1'), 'قباني^لنزار'],
  ['ISO_IR 138', 'PN', bytes('\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4'), 'שרון^דבורה'],
  ['ISO_IR 166', 'LO', bytes('\xb9\xd2\xc1'), 'นาม'],
  ['ISO_IR 192', 'PN', Buffer.from('Wang^XiaoDong=王^小東=', 'utf8'), 'Wang^XiaoDong=王^小東='],
  ['ISO 2022 IR 100\\ISO 2022 IR 144', 'LO', bytes('M\xfcller ESC-L\xbb\xee\xda ESC-A\xe4'), 'Müller Люк ä'],
  ['', 'LO', bytes('PLAIN^ASCII'), 'PLAIN^ASCII'],
];

for (const [charset, vr, written, text] of VECTORS) {
  test(`${charset || 'default'} (${vr}): ${text} decodes, and encodes back to the same bytes`, (t) => {
    const cs = parseCharset(charset);
    t.deepEqual(cs.unknown, []);
    t.is(decodeText(written, cs, vr), text);
    t.deepEqual(Buffer.from(encodeText(text, cs, vr) ?? []), written);
  });
}

test('the ISO 2022 state returns to value 1 at each delimiter and control, even without escapes', (t) => {
  const cs = parseCharset('\\ISO 2022 IR 87');
  // In JIS X 0208 mode 0x5C is half of a character, not the value delimiter.
  t.is(decodeText(bytes('ESC$B\\AESC(B\\X'), cs, 'LO'), '楞\\X');
  // After each value delimiter the set of value 1 is active again (here: G1 back to ISO 8859-1).
  t.is(decodeText(bytes('ESC-L\xbb\\\xbb'), parseCharset('ISO 2022 IR 100\\ISO 2022 IR 144'), 'LO'), 'Л\\»');
  // In JIS X 0208 mode '^' (0x5E) and '=' (0x3D) are halves of characters, not delimiters.
  t.is(decodeText(bytes('ESC$B$^$=ESC(B'), cs, 'PN'), 'まそ');
  // In ST/LT/UT '\' is text; CR LF still returns to ASCII.
  t.is(decodeText(bytes('ESC$B;3\r\nAB\\C'), cs, 'LT'), '山\r\nAB\\C');
});

test('a value a character set cannot hold is not encoded', (t) => {
  t.is(encodeText('Ⅰ', parseCharset('\\ISO 2022 IR 87'), 'LO'), undefined); // NEC row 13: read, never written
  t.is(encodeText('ä', parseCharset('\\ISO 2022 IR 87'), 'LO'), undefined); // not in JIS X 0208
  t.is(encodeText('Ä', parseCharset(''), 'LO'), undefined);
  t.is(encodeText('山田', parseCharset('ISO_IR 100'), 'PN'), undefined);
  t.is(encodeText('小東', parseCharset('\\ISO 2022 IR 58'), 'PN'), undefined); // 東 is traditional, GB 2312 has 东
  t.deepEqual(Buffer.from(encodeText('頭部', parseCharset('\\ISO 2022 IR 87'), 'LO') ?? []), Buffer.from('\x1b$BF,It\x1b(B', 'latin1'));
  t.is(encodeText('Bär', parseCharset('\\ISO 2022 IR 87'), 'LO'), undefined);
  t.deepEqual(Buffer.from(encodeText('ASCII only', parseCharset('ISO_IR 6'), 'LO') ?? []), Buffer.from('ASCII only'));
});

test('a multi-byte set named as value 1 is not active at the start; an unknown value 1 is the default', (t) => {
  t.is(decodeText(bytes('Yamada=ESC$B;3EDESC(B'), parseCharset('ISO 2022 IR 87'), 'PN'), 'Yamada=山田');
  t.deepEqual(Buffer.from(encodeText('Hong=洪', parseCharset('ISO 2022 IR 149'), 'PN') ?? []), bytes('Hong=ESC$)C\xfb\xf3'));
  t.is(decodeText(bytes('Hong=\xfb\xf3'), parseCharset('ISO 2022 IR 149'), 'PN'), 'Hong=洪'); // lenient: escape omitted
  const odd = parseCharset('ISO_IR 999\\ISO 2022 IR 87');
  t.deepEqual(odd.unknown, ['ISO_IR 999']);
  t.is(decodeText(bytes('Yamada'), odd, 'PN'), 'Yamada');
});

test('charset values: empty value 1, unknown terms, tolerant spelling', (t) => {
  t.deepEqual(parseCharset(['', 'ISO 2022 IR 87']).terms.map((x) => x.term), ['ISO 2022 IR 6', 'ISO 2022 IR 87']);
  t.deepEqual(parseCharset(undefined).terms.map((x) => x.term), ['ISO_IR 6']);
  t.deepEqual(parseCharset('ISO-IR 100').terms.map((x) => x.term), ['ISO_IR 100']);
  t.deepEqual(parseCharset('ISO_IR 999').unknown, ['ISO_IR 999']);
});

/**
 * Every character of a graphic set, from its own decoder. 94x94 sets: the rows the standard set
 * defines (`leads`), trail bytes 0xA1-0xFE; JIS X 0212 through EUC-JP's 0x8F prefix.
 */
function repertoire(label: string, form: 'sb' | 'dbcs' | 'jisx0212', leads: [number, number][] = [[0xa1, 0xfe]]): string[] {
  const d = new TextDecoder(label, { fatal: false });
  const out = new Set<string>();
  if (form === 'sb') for (let b = 0xa0; b <= 0xff; b++) out.add(d.decode(Uint8Array.of(b)));
  else {
    for (const [from, to] of leads) {
      for (let a = from; a <= to; a++) {
        for (let b = 0xa1; b <= 0xfe; b++) out.add(d.decode(form === 'jisx0212' ? Uint8Array.of(0x8f, a, b) : Uint8Array.of(a, b)));
      }
    }
  }
  return [...out].filter((c) => [...c].length === 1 && c !== '\ufffd' && c !== '\u00a0' && !/[\ue000-\uf8ff]/.test(c));
}

// JIS X 0208: rows 1-12 and 16-84 (row 13 holds NEC's additions); JIS X 0212: rows 2, 6-7, 9-11,
// 16-77; KS X 1001: rows 1-12, 16-40, 42-93; GB 2312: rows 1-9, 16-87.
const JIS_X_0208_ROWS: [number, number][] = [[0xa1, 0xac], [0xb0, 0xf4]];
const JIS_X_0212_ROWS: [number, number][] = [[0xa2, 0xa2], [0xa6, 0xa7], [0xa9, 0xab], [0xb0, 0xed]];
const KS_X_1001_ROWS: [number, number][] = [[0xa1, 0xac], [0xb0, 0xc8], [0xca, 0xfd]];
const GB_2312_ROWS: [number, number][] = [[0xa1, 0xa9], [0xb0, 0xf7]];

const ASCII = [...'ABCXYZ abc 0189.-'];
const REPERTOIRES: [string, string[]][] = [
  ['ISO_IR 100', repertoire('iso-8859-1', 'sb')],
  ['ISO_IR 101', repertoire('iso-8859-2', 'sb')],
  ['ISO_IR 109', repertoire('iso-8859-3', 'sb')],
  ['ISO_IR 110', repertoire('iso-8859-4', 'sb')],
  ['ISO_IR 144', repertoire('iso-8859-5', 'sb')],
  ['ISO_IR 148', repertoire('iso-8859-9', 'sb')],
  ['ISO_IR 166', repertoire('windows-874', 'sb').filter((c) => c !== '\u20ac' && c !== '\u2026')],
  ['ISO 2022 IR 13', repertoire('shift_jis', 'sb').filter((c) => c >= '\uff61' && c <= '\uff9f')],
  ['\\ISO 2022 IR 87', repertoire('euc-jp', 'dbcs', JIS_X_0208_ROWS)],
  ['\\ISO 2022 IR 87\\ISO 2022 IR 159', repertoire('euc-jp', 'jisx0212', JIS_X_0212_ROWS)],
  ['\\ISO 2022 IR 149', repertoire('euc-kr', 'dbcs', KS_X_1001_ROWS)],
  ['\\ISO 2022 IR 58', repertoire('gbk', 'dbcs', GB_2312_ROWS)],
  ['ISO_IR 192', ['Ä', '山', '홍', '𠀋', 'ش']],
  ['GB18030', ['王', '東', '𠀋', 'é', 'ش']],
  ['GBK', repertoire('gbk', 'dbcs')],
];

for (const [charset, chars] of REPERTOIRES) {
  test(`property: ${charset}: text of its repertoire encodes and decodes to itself`, (t) => {
    t.true(chars.length > 0);
    const cs = parseCharset(charset);
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...chars, ...ASCII), { maxLength: 24 }),
        fc.array(fc.constantFrom(...chars, ...ASCII, '^', '='), { maxLength: 24 }),
        (a, b) => {
          for (const [vr, text] of [['LO', a.join('')], ['PN', b.join('')], ['LT', `${a.join('')}\r\n${b.join('')}`]]) {
            const written = encodeText(text, cs, vr);
            if (written === undefined) return false;
            if (decodeText(written, cs, vr) !== text) return false;
          }
          return true;
        },
      ),
      { numRuns: fuzzRuns(200) },
    );
  });
}

test('property: any bytes in any character set decode to text without throwing', (t) => {
  const charsets = ['', 'ISO_IR 100', '\\ISO 2022 IR 87\\ISO 2022 IR 159', 'ISO 2022 IR 13\\ISO 2022 IR 87', '\\ISO 2022 IR 149', '\\ISO 2022 IR 58', 'GB18030', 'ISO_IR 192', 'ISO_IR 166'];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(...charsets), fc.constantFrom('LO', 'PN', 'LT'), (b, cs, vr) => {
      // ESC and the bytes of escape sequences often, so the ISO 2022 state machine is exercised.
      const bytes = b.map((x) => (x % 7 === 0 ? 0x1b : x % 11 === 0 ? 0x24 : x));
      return typeof decodeText(bytes, parseCharset(cs), vr) === 'string';
    }),
    { numRuns: fuzzRuns(2000) },
  );
  t.pass();
});
