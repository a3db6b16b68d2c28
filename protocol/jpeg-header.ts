// The marker segments of a JPEG (ISO 10918-1 B.1–B.2) or JPEG-LS (ISO 14495-1 C.2) codestream
// up to the first scan: enough to pick a decoder and to know how the decoder will treat colour.
// The colour space of a 3-component JPEG is not in the frame header: libjpeg guesses it from a
// JFIF APP0 (YCbCr) or an Adobe APP14 (its transform flag), else from component ids ('R','G','B'
// means RGB), else assumes YCbCr. DICOM says it in Photometric Interpretation (PS3.5 8.2.1), so
// an RGB frame without either marker gets an Adobe marker saying "no transform" before decoding,
// which is what DCMTK does by telling libjpeg the colour space.

export class JpegHeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JpegHeaderError';
  }
}

export type JpegComponent = { id: number; h: number; v: number };

export type JpegHeader = {
  /** The SOF marker's second byte: 0xC0 baseline, 0xC1 extended, 0xC3 lossless, 0xF7 JPEG-LS, ... */
  sof: number;
  /** Sample precision P in bits. */
  precision: number;
  rows: number;
  columns: number;
  components: JpegComponent[];
  jfif: boolean;
  /** Adobe APP14 transform flag (0 none, 1 YCbCr, 2 YCCK), if the marker is present. */
  adobeTransform?: number;
};

const SOI = 0xd8;
const SOS = 0xda;
const EOI = 0xd9;

function isSof(m: number): boolean {
  // C0–CF except DHT (C4), JPG (C8), DAC (CC); F7 is JPEG-LS SOF55.
  return (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7;
}

/** Reads marker segments from SOI to the first SOS. Throws JpegHeaderError. */
export function readJpegHeader(frame: Uint8Array): JpegHeader {
  if (frame.length < 4 || frame[0] !== 0xff || frame[1] !== SOI) throw new JpegHeaderError('frame does not start with a JPEG SOI marker');
  let pos = 2;
  let header: JpegHeader | undefined;
  let jfif = false;
  let adobeTransform: number | undefined;
  while (pos + 4 <= frame.length) {
    if (frame[pos] !== 0xff) throw new JpegHeaderError(`expected a marker at offset ${pos}`);
    const marker = frame[pos + 1];
    if (marker === 0xff) {
      pos++; // fill byte (B.1.1.2)
      continue;
    }
    if (marker === SOS || marker === EOI) break;
    if (marker >= 0xd0 && marker <= 0xd7) throw new JpegHeaderError(`restart marker before the first scan at offset ${pos}`);
    const length = (frame[pos + 2] << 8) | frame[pos + 3];
    const seg = pos + 4;
    const end = pos + 2 + length;
    if (length < 2 || end > frame.length) throw new JpegHeaderError(`marker segment FF${marker.toString(16).toUpperCase()} at offset ${pos} runs past the frame`);
    if (isSof(marker)) {
      if (length < 8) throw new JpegHeaderError('frame header too short');
      const count = frame[seg + 5];
      if (8 + 3 * count > length) throw new JpegHeaderError('frame header too short for its components');
      const components: JpegComponent[] = [];
      for (let i = 0; i < count; i++) {
        const c = seg + 6 + 3 * i;
        components.push({ id: frame[c], h: frame[c + 1] >> 4, v: frame[c + 1] & 15 });
      }
      header = {
        sof: marker,
        precision: frame[seg],
        rows: (frame[seg + 1] << 8) | frame[seg + 2],
        columns: (frame[seg + 3] << 8) | frame[seg + 4],
        components,
        jfif: false,
      };
    } else if (marker === 0xe0 && length >= 7 && String.fromCharCode(...frame.subarray(seg, seg + 5)) === 'JFIF\0') {
      jfif = true;
    } else if (marker === 0xee && length >= 14 && String.fromCharCode(...frame.subarray(seg, seg + 5)) === 'Adobe') {
      adobeTransform = frame[seg + 11];
    }
    pos = end;
  }
  if (header === undefined) throw new JpegHeaderError('no frame header (SOF) before the first scan');
  header.jfif = jfif;
  if (adobeTransform !== undefined) header.adobeTransform = adobeTransform;
  return header;
}

/** Would libjpeg treat this 3-component frame as YCbCr and convert it to RGB? (jdapimin.c default_decompress_parms) */
export function libjpegAssumesYcbcr(h: JpegHeader): boolean {
  if (h.components.length !== 3) return false;
  if (h.jfif) return true;
  if (h.adobeTransform !== undefined) return h.adobeTransform !== 0;
  const [a, b, c] = h.components.map((x) => x.id);
  if (a === 0x52 && b === 0x47 && c === 0x42) return false; // 'R','G','B'
  return true;
}

/** The frame with an Adobe APP14 marker (transform 0: components are RGB) inserted after SOI. */
export function withAdobeRgbMarker(frame: Uint8Array): Uint8Array {
  // APP14: length 14, "Adobe", version 100, flags0 0, flags1 0, transform 0 (Adobe TN 5116).
  const marker = Uint8Array.of(0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00);
  const out = new Uint8Array(frame.length + marker.length);
  out.set(frame.subarray(0, 2), 0);
  out.set(marker, 2);
  out.set(frame.subarray(2), 2 + marker.length);
  return out;
}

/**
 * The JPEG 2000 codestream of a frame. DICOM wants a bare codestream (PS3.5 A.4.4), but some
 * encoders store a JP2 file; its contiguous codestream box ('jp2c', ISO 15444-1 I.5.4) is used.
 */
export function j2kCodestream(frame: Uint8Array): Uint8Array {
  const jp2 = [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20];
  if (frame.length < 12 || jp2.some((b, i) => frame[i] !== b)) return frame;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  for (let pos = 0; pos + 8 <= frame.length; ) {
    let length = dv.getUint32(pos, false);
    const type = String.fromCharCode(frame[pos + 4], frame[pos + 5], frame[pos + 6], frame[pos + 7]);
    let header = 8;
    if (length === 1) {
      if (pos + 16 > frame.length) break;
      length = Number(dv.getBigUint64(pos + 8, false));
      header = 16;
    } else if (length === 0) length = frame.length - pos;
    if (type === 'jp2c') return frame.subarray(pos + header, Math.min(frame.length, pos + length));
    if (length < header) break;
    pos += length;
  }
  throw new JpegHeaderError('JP2 file without a codestream box');
}
