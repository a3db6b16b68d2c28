// A decoder for JPEG Extended sequential DCT with Huffman coding (ISO 10918-1 process 2/4,
// SOF0/SOF1) of ONE component at 8 or 12 bits: what DICOM's JPEG Extended syntax (PS3.5 A.4.1,
// 1.2.840.10008.1.2.4.51) carries for 12-bit grey images, which libjpeg-turbo's 8-bit WASM
// build cannot decode. Colour, progressive and arithmetic-coded streams are refused.
//
// The inverse DCT is the IJG "islow" integer algorithm (jidctint.c, Loeffler–Ligtenberg–
// Moschytz, CONST_BITS 13, PASS1_BITS 2 at 8 bits and 1 at 12) with IJG's range-limit table,
// so the output equals IJG libjpeg's (and DCMTK's dcmdjpeg, which uses it) sample for sample.
import { JpegHeaderError } from './jpeg-header.ts';

export type GreyImage = { rows: number; columns: number; precision: number; samples: Uint16Array };

// Natural order index of the k-th coefficient in zig-zag order (F.1.1.5, Figure A.6).
const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

type Huffman = { lookup: Map<number, number> }; // key: (length << 16) | code

function buildHuffman(counts: Uint8Array, symbols: Uint8Array): Huffman {
  // Annex C: canonical codes, increasing length.
  const lookup = new Map<number, number>();
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < counts[len - 1]; i++) lookup.set((len << 16) | code++, symbols[k++]);
    code <<= 1;
  }
  return { lookup };
}

class BitReader {
  readonly data: Uint8Array;
  pos: number;
  bits = 0;
  count = 0;
  hitMarker = false;
  constructor(data: Uint8Array, pos: number) {
    this.data = data;
    this.pos = pos;
  }
  bit(): number {
    if (this.count === 0) {
      let byte = 0;
      // At a marker libjpeg feeds zeros (jdhuff.c jpeg_fill_bit_buffer); so do we.
      if (!this.hitMarker && this.pos < this.data.length) {
        byte = this.data[this.pos];
        if (byte === 0xff) {
          const next = this.data[this.pos + 1];
          if (next === 0x00) this.pos += 2;
          else {
            this.hitMarker = true;
            byte = 0;
          }
        } else this.pos++;
      }
      this.bits = byte;
      this.count = 8;
    }
    this.count--;
    return (this.bits >> this.count) & 1;
  }
  receive(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | this.bit();
    return v;
  }
  /** F.2.2.1 EXTEND. */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    const v = this.receive(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }
  decode(h: Huffman): number {
    let code = 0;
    for (let len = 1; len <= 16; len++) {
      code = (code << 1) | this.bit();
      const s = h.lookup.get((len << 16) | code);
      if (s !== undefined) return s;
    }
    throw new JpegHeaderError('invalid Huffman code in the JPEG scan');
  }
  /** Skips to just after the next RSTn marker (restart interval, F.1.2.3). */
  restart(): void {
    this.count = 0;
    this.hitMarker = false;
    while (this.pos + 1 < this.data.length && !(this.data[this.pos] === 0xff && this.data[this.pos + 1] >= 0xd0 && this.data[this.pos + 1] <= 0xd7)) this.pos++;
    this.pos += 2;
  }
}

// jidctint.c constants, scaled by 2^13.
const F0_298 = 2446, F0_390 = 3196, F0_541 = 4433, F0_765 = 6270, F0_899 = 7373, F1_175 = 9633;
const F1_501 = 12299, F1_847 = 15137, F1_961 = 16069, F2_053 = 16819, F2_562 = 20995, F3_072 = 25172;
const CONST_BITS = 13;

/** Arithmetic right shift with rounding (jpegint.h DESCALE), exact on doubles. */
function descale(x: number, n: number): number {
  return Math.floor((x + 2 ** (n - 1)) / 2 ** n);
}

/** One 8x8 block: dequantize, islow IDCT, range-limit into out (stride `width`). */
function idctBlock(coef: Int32Array, q: Int32Array, precision: number, out: Uint16Array, at: number, width: number, maxRows: number, maxCols: number, ws: Float64Array): void {
  const pass1 = precision === 8 ? 2 : 1;
  const max = (1 << precision) - 1;
  const center = 1 << (precision - 1);
  const mask = 4 * (max + 1) - 1;
  const limit = (v: number): number => {
    // jdmaster.c prepare_range_limit_table, post-IDCT part.
    const i = v & mask;
    if (i < center) return i + center;
    if (i < 2 * (max + 1)) return max;
    if (i < 4 * (max + 1) - center) return 0;
    return i - (4 * (max + 1) - center);
  };
  for (let c = 0; c < 8; c++) {
    const d = (k: number) => coef[k * 8 + c] * q[k * 8 + c];
    if (coef[8 + c] === 0 && coef[16 + c] === 0 && coef[24 + c] === 0 && coef[32 + c] === 0 && coef[40 + c] === 0 && coef[48 + c] === 0 && coef[56 + c] === 0) {
      const dc = d(0) * 2 ** pass1;
      for (let k = 0; k < 8; k++) ws[k * 8 + c] = dc;
      continue;
    }
    const r = butterfly(d(0), d(1), d(2), d(3), d(4), d(5), d(6), d(7));
    for (let k = 0; k < 8; k++) ws[k * 8 + c] = descale(r[k], CONST_BITS - pass1);
  }
  for (let row = 0; row < 8 && row < maxRows; row++) {
    const w = row * 8;
    const o = at + row * width;
    if (ws[w + 1] === 0 && ws[w + 2] === 0 && ws[w + 3] === 0 && ws[w + 4] === 0 && ws[w + 5] === 0 && ws[w + 6] === 0 && ws[w + 7] === 0) {
      const v = limit(descale(ws[w], pass1 + 3));
      for (let k = 0; k < 8 && k < maxCols; k++) out[o + k] = v;
      continue;
    }
    const r = butterfly(ws[w], ws[w + 1], ws[w + 2], ws[w + 3], ws[w + 4], ws[w + 5], ws[w + 6], ws[w + 7]);
    for (let k = 0; k < 8 && k < maxCols; k++) out[o + k] = limit(descale(r[k], CONST_BITS + pass1 + 3));
  }
}

const tmpOut = new Float64Array(8);

/** The jidctint.c 1-D kernel: outputs scaled by 2^CONST_BITS, not yet descaled. */
function butterfly(i0: number, i1: number, i2: number, i3: number, i4: number, i5: number, i6: number, i7: number): Float64Array {
  // Even part.
  let z1 = (i2 + i6) * F0_541;
  const t2 = z1 + i6 * -F1_847;
  const t3 = z1 + i2 * F0_765;
  const t0 = (i0 + i4) * 2 ** CONST_BITS;
  const t1 = (i0 - i4) * 2 ** CONST_BITS;
  const t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
  // Odd part.
  let o0 = i7, o1 = i5, o2 = i3, o3 = i1;
  z1 = o0 + o3;
  let z2 = o1 + o2, z3 = o0 + o2, z4 = o1 + o3;
  const z5 = (z3 + z4) * F1_175;
  o0 *= F0_298;
  o1 *= F2_053;
  o2 *= F3_072;
  o3 *= F1_501;
  z1 *= -F0_899;
  z2 *= -F2_562;
  z3 = z3 * -F1_961 + z5;
  z4 = z4 * -F0_390 + z5;
  o0 += z1 + z3;
  o1 += z2 + z4;
  o2 += z2 + z3;
  o3 += z1 + z4;
  const r = tmpOut;
  r[0] = t10 + o3; r[7] = t10 - o3;
  r[1] = t11 + o2; r[6] = t11 - o2;
  r[2] = t12 + o1; r[5] = t12 - o1;
  r[3] = t13 + o0; r[4] = t13 - o0;
  return r;
}

/** Decodes a one-component sequential Huffman DCT JPEG (SOF0/SOF1, 8 or 12 bits). Throws JpegHeaderError. */
export function decodeJpegExtendedGrey(data: Uint8Array): GreyImage {
  if (data[0] !== 0xff || data[1] !== 0xd8) throw new JpegHeaderError('frame does not start with a JPEG SOI marker');
  const quant: Int32Array[] = [];
  const dc: Huffman[] = [];
  const ac: Huffman[] = [];
  let restartInterval = 0;
  let frame: { precision: number; rows: number; columns: number; id: number; tq: number } | undefined;
  let scanTables = 0;
  let pos = 2;
  for (;;) {
    if (pos + 4 > data.length) throw new JpegHeaderError('JPEG stream ends before its scan');
    if (data[pos] !== 0xff) throw new JpegHeaderError(`expected a marker at offset ${pos}`);
    const marker = data[pos + 1];
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const len = (data[pos + 2] << 8) | data[pos + 3];
    const seg = pos + 4;
    const end = pos + 2 + len;
    if (end > data.length) throw new JpegHeaderError(`marker segment at offset ${pos} runs past the frame`);
    if (marker === 0xdb) {
      for (let p = seg; p < end; ) {
        const pq = data[p] >> 4;
        const t = new Int32Array(64);
        for (let k = 0; k < 64; k++) t[ZIGZAG[k]] = pq ? (data[p + 1 + 2 * k] << 8) | data[p + 2 + 2 * k] : data[p + 1 + k];
        quant[data[p] & 15] = t;
        p += 1 + (pq ? 128 : 64);
      }
    } else if (marker === 0xc4) {
      for (let p = seg; p < end; ) {
        const counts = data.subarray(p + 1, p + 17);
        const n = counts.reduce((a, b) => a + b, 0);
        const table = buildHuffman(counts, data.subarray(p + 17, p + 17 + n));
        (data[p] >> 4 ? ac : dc)[data[p] & 15] = table;
        p += 17 + n;
      }
    } else if (marker === 0xdd) {
      restartInterval = (data[seg] << 8) | data[seg + 1];
    } else if (marker === 0xc0 || marker === 0xc1) {
      if (data[seg + 5] !== 1) throw new JpegHeaderError(`JPEG Extended with ${data[seg + 5]} components: only single-component (grey) images are decoded`);
      frame = { precision: data[seg], rows: (data[seg + 1] << 8) | data[seg + 2], columns: (data[seg + 3] << 8) | data[seg + 4], id: data[seg + 6], tq: data[seg + 8] };
      if (frame.precision !== 8 && frame.precision !== 12) throw new JpegHeaderError(`JPEG sample precision ${frame.precision} is not 8 or 12`);
      if (frame.rows === 0) throw new JpegHeaderError('JPEG with the number of lines defined later (DNL) is not supported');
    } else if ((marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7) {
      throw new JpegHeaderError(`JPEG process with SOF marker FF${marker.toString(16).toUpperCase()} is not sequential Huffman DCT`);
    } else if (marker === 0xda) {
      // Scan header (B.2.3): Ns, then Cs and Td/Ta per component.
      if (data[seg] !== 1) throw new JpegHeaderError(`JPEG scan with ${data[seg]} components: only single-component scans are decoded`);
      scanTables = data[seg + 2];
      pos = end;
      break;
    } else if (marker === 0xd9) throw new JpegHeaderError('JPEG stream ends before its scan');
    pos = end;
  }
  if (frame === undefined) throw new JpegHeaderError('no frame header (SOF) before the first scan');
  const scanStart = pos;
  const q = quant[frame.tq];
  const dcTable = dc[scanTables >> 4];
  const acTable = ac[scanTables & 15];
  if (q === undefined || dcTable === undefined || acTable === undefined) throw new JpegHeaderError('JPEG scan refers to a missing quantization or Huffman table');

  const { rows, columns, precision } = frame;
  const out = new Uint16Array(rows * columns);
  const blocksAcross = Math.ceil(columns / 8);
  const blocksDown = Math.ceil(rows / 8);
  const reader = new BitReader(data, scanStart);
  const coef = new Int32Array(64);
  const ws = new Float64Array(64);
  let pred = 0;
  let mcu = 0;
  for (let by = 0; by < blocksDown; by++) {
    for (let bx = 0; bx < blocksAcross; bx++, mcu++) {
      if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
        reader.restart();
        pred = 0;
      }
      coef.fill(0);
      pred += reader.receiveExtend(reader.decode(dcTable));
      coef[0] = pred;
      for (let k = 1; k < 64; ) {
        const rs = reader.decode(acTable);
        const r = rs >> 4;
        const s = rs & 15;
        if (s === 0) {
          if (r !== 15) break;
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) throw new JpegHeaderError('JPEG block has more than 64 coefficients');
        coef[ZIGZAG[k]] = reader.receiveExtend(s);
        k++;
      }
      idctBlock(coef, q, precision, out, by * 8 * columns + bx * 8, columns, rows - by * 8, columns - bx * 8, ws);
    }
  }
  return { rows, columns, precision, samples: out };
}
