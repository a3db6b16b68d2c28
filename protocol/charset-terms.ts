// The Defined Terms of Specific Character Set (0008,0005) (PS3.3 C.12.1.1.2, Tables C.12-2 to
// C.12-5): which graphic set each term puts in G0 (bytes 0x21-0x7E) and G1 (0xA1-0xFE), and the ISO
// 2022 escape sequence that designates it. The byte <-> character tables themselves are not ours:
// they are TextDecoder's (WHATWG encodings).

/**
 * A graphic character set as DICOM uses it. `decoder` is a WHATWG encoding label; `form` says how
 * one character of the set is framed for it:
 * 'sb' one byte (G1 sets: the byte as written, 0xA0-0xFF), 'euc' two bytes with the high bit set
 * (94x94 sets: JIS X 0208, KS X 1001, GB 2312), 'euc-3' 0x8F then two such bytes (JIS X 0212 in EUC-JP).
 */
export type GraphicSet = {
  id: string;
  decoder: string;
  form: 'ascii' | 'sb' | 'euc' | 'euc-3';
  /** 94x94 sets: the rows (lead bytes, high bit set) the standard defines; only these are written. */
  rows?: [number, number][];
};

const ASCII: GraphicSet = { id: 'ASCII', decoder: 'utf-8', form: 'ascii' };
// JIS X 0201 Romaji differs from ASCII only at 0x5C (yen) and 0x7E (overline); like DCMTK and
// pydicom we read it as ASCII, so '\' stays the value delimiter.
const JIS_ROMAN: GraphicSet = { ...ASCII, id: 'JIS X 0201 Romaji' };
const KATAKANA: GraphicSet = { id: 'JIS X 0201 Katakana', decoder: 'shift_jis', form: 'sb' };
// Decoders know vendor rows too (NEC's row 13, IBM's 89-92 in EUC-JP; the GBK and UHC extensions):
// these are read, but only the rows of the standard sets are written.
const JIS_X_0208: GraphicSet = { id: 'JIS X 0208', decoder: 'euc-jp', form: 'euc', rows: [[0xa1, 0xac], [0xb0, 0xf4]] };
const JIS_X_0212: GraphicSet = { id: 'JIS X 0212', decoder: 'euc-jp', form: 'euc-3', rows: [[0xa2, 0xa2], [0xa6, 0xa7], [0xa9, 0xab], [0xb0, 0xed]] };
const KS_X_1001: GraphicSet = { id: 'KS X 1001', decoder: 'euc-kr', form: 'euc', rows: [[0xa1, 0xac], [0xb0, 0xc8], [0xca, 0xfd]] };
const GB_2312: GraphicSet = { id: 'GB 2312', decoder: 'gbk', form: 'euc', rows: [[0xa1, 0xa9], [0xb0, 0xf7]] };
// The upper halves (0xA0-0xFF) of ISO 8859 and TIS 620. TextDecoder reads the labels iso-8859-1 and
// -9 as windows-1252/-1254, which agree with them on that half; C1 bytes never reach a G1 decoder.
const upper = (id: string, label: string): GraphicSet => ({ id, decoder: label, form: 'sb' });
const LATIN: Record<string, GraphicSet> = {
  100: upper('ISO 8859-1', 'iso-8859-1'),
  101: upper('ISO 8859-2', 'iso-8859-2'),
  109: upper('ISO 8859-3', 'iso-8859-3'),
  110: upper('ISO 8859-4', 'iso-8859-4'),
  144: upper('ISO 8859-5', 'iso-8859-5'),
  127: upper('ISO 8859-6', 'iso-8859-6'),
  126: upper('ISO 8859-7', 'iso-8859-7'),
  138: upper('ISO 8859-8', 'iso-8859-8'),
  148: upper('ISO 8859-9', 'iso-8859-9'),
  203: upper('ISO 8859-15', 'iso-8859-15'),
  166: { id: 'TIS 620-2533', decoder: 'windows-874', form: 'sb' },
};
// Final bytes of ESC 2/13 F, which designates a 96-character set to G1 (PS3.3 Table C.12-3).
const LATIN_FINAL: Record<string, string> = { 100: 'A', 101: 'B', 109: 'C', 110: 'D', 144: 'L', 127: 'G', 126: 'F', 138: 'H', 148: 'M', 203: 'b', 166: 'T' };

export type Designation = { set: GraphicSet; escape: string };

/** One Defined Term: what it designates initially (and, for ISO 2022 terms, by escape). */
export type CharsetTerm = {
  term: string;
  /** ISO 2022 code extensions are allowed (the term starts with 'ISO 2022'). */
  extensions: boolean;
  g0?: Designation;
  g1?: Designation;
  /** Not an ISO 2022 set: the whole value is one encoding (UTF-8, GB18030, GBK). */
  whole?: { decoder: string; encoder: 'utf8' | 'gbk' | 'gb18030' };
};

const ESC = '\x1b';
const G0_ASCII: Designation = { set: ASCII, escape: `${ESC}(B` };

function build(): Map<string, CharsetTerm> {
  const terms = new Map<string, CharsetTerm>();
  const add = (t: CharsetTerm) => terms.set(t.term, t);
  add({ term: 'ISO_IR 6', extensions: false, g0: G0_ASCII });
  add({ term: 'ISO 2022 IR 6', extensions: true, g0: G0_ASCII });
  for (const [ir, set] of Object.entries(LATIN)) {
    const g1: Designation = { set, escape: `${ESC}-${LATIN_FINAL[ir]}` };
    add({ term: `ISO_IR ${ir}`, extensions: false, g0: G0_ASCII, g1 });
    add({ term: `ISO 2022 IR ${ir}`, extensions: true, g0: G0_ASCII, g1 });
  }
  const roman: Designation = { set: JIS_ROMAN, escape: `${ESC}(J` };
  const kana: Designation = { set: KATAKANA, escape: `${ESC})I` };
  add({ term: 'ISO_IR 13', extensions: false, g0: roman, g1: kana });
  add({ term: 'ISO 2022 IR 13', extensions: true, g0: roman, g1: kana });
  add({ term: 'ISO 2022 IR 87', extensions: true, g0: { set: JIS_X_0208, escape: `${ESC}$B` } });
  add({ term: 'ISO 2022 IR 159', extensions: true, g0: { set: JIS_X_0212, escape: `${ESC}$(D` } });
  add({ term: 'ISO 2022 IR 149', extensions: true, g1: { set: KS_X_1001, escape: `${ESC}$)C` } });
  add({ term: 'ISO 2022 IR 58', extensions: true, g1: { set: GB_2312, escape: `${ESC}$)A` } });
  add({ term: 'ISO_IR 192', extensions: false, whole: { decoder: 'utf-8', encoder: 'utf8' } });
  add({ term: 'GB18030', extensions: false, whole: { decoder: 'gb18030', encoder: 'gb18030' } });
  add({ term: 'GBK', extensions: false, whole: { decoder: 'gbk', encoder: 'gbk' } });
  return terms;
}

export const CHARSET_TERMS: ReadonlyMap<string, CharsetTerm> = build();

/** Every escape sequence we know, longest first (so ESC $ ( D is not taken for ESC $ ...). */
export const DESIGNATIONS: readonly { escape: string; g: 0 | 1; set: GraphicSet }[] = (() => {
  const seen = new Map<string, { escape: string; g: 0 | 1; set: GraphicSet }>();
  for (const t of CHARSET_TERMS.values()) {
    if (t.g0) seen.set(t.g0.escape, { escape: t.g0.escape, g: 0, set: t.g0.set });
    if (t.g1) seen.set(t.g1.escape, { escape: t.g1.escape, g: 1, set: t.g1.set });
  }
  return [...seen.values()].sort((a, b) => b.escape.length - a.escape.length);
})();
