// The journal's on-disk format: segment headers and records, each with a CRC-32 so a torn or stale
// record is recognised, never trusted. Pure functions over bytes (no I/O).
//
// Segment file (preallocated, zero-written, fixed size): a 64-byte header, then records back to back.
//   header: magic "DRJ1" | u32 version | f64 seq | u32 segmentSize | u32 crc(bytes 0..20)
// Record: a 24-byte header, then its payload.
//   u32 crc (of bytes 4..24 and the payload) | u32 payload length | u32 type | u32 segment seq (low 32 bits)
//   | f64 stream (the LSN of the stream's first DATA record)
// A record belongs to the generation of the segment it lies in: a recycled segment gets a new seq, so
// the old generation's records after the new tail fail the seq check even though their CRC holds.
import { crc32 } from 'node:zlib';

export const SEGMENT_HEADER_SIZE = 64;
export const RECORD_HEADER_SIZE = 24;
const MAGIC = 0x44524a31; // "DRJ1"
const VERSION = 1;

export const RecordType = {
  /** A piece of a stream's bytes (Part-10 header, then the dataset); a stream's id is the LSN of its first piece. */
  DATA: 2,
  /** The stream is complete and durable: the instance row and the routing decision (redo list). */
  COMMIT: 3,
  /** The writer left this segment here; the log continues in the segment with the next seq. */
  END: 4,
  /** A COMMIT whose group failed to become durable (or whose index commit failed): ignored by replay. */
  VOID: 5,
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

export type SegmentHeader = { seq: number; segmentSize: number };

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_SIZE);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt32LE(VERSION, 4);
  b.writeDoubleLE(h.seq, 8);
  b.writeUInt32LE(h.segmentSize, 16);
  b.writeUInt32LE(crc32(b.subarray(0, 20)), 20);
  return b;
}

/** undefined for anything that is not an intact header (a torn header write, a zeroed file). */
export function decodeSegmentHeader(b: Uint8Array): SegmentHeader | undefined {
  if (b.byteLength < SEGMENT_HEADER_SIZE) return undefined;
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (v.readUInt32LE(0) !== MAGIC || v.readUInt32LE(4) !== VERSION) return undefined;
  if (v.readUInt32LE(20) !== crc32(v.subarray(0, 20))) return undefined;
  return { seq: v.readDoubleLE(8), segmentSize: v.readUInt32LE(16) };
}

/** The record header for `payload` (given as pieces, so DATA is never copied). */
export function encodeRecordHeader(type: RecordTypeCode, segSeq: number, stream: number, payload: readonly Uint8Array[]): Buffer {
  const b = Buffer.alloc(RECORD_HEADER_SIZE);
  let length = 0;
  for (const p of payload) length += p.byteLength;
  b.writeUInt32LE(length, 4);
  b.writeUInt32LE(type, 8);
  b.writeUInt32LE(segSeq >>> 0, 12);
  b.writeDoubleLE(stream, 16);
  let crc = crc32(b.subarray(4));
  for (const p of payload) crc = crc32(p, crc);
  b.writeUInt32LE(crc, 0);
  return b;
}

export type RecordHeader = { type: RecordTypeCode; length: number; stream: number; crc: number };

/** The header at the start of `b` if it is plausible for segment `segSeq` and fits in `room`; the CRC is checked with the payload (checkRecord). */
export function decodeRecordHeader(b: Buffer, segSeq: number, room: number): RecordHeader | undefined {
  if (b.byteLength < RECORD_HEADER_SIZE) return undefined;
  const type = b.readUInt32LE(8);
  const length = b.readUInt32LE(4);
  if (type < RecordType.DATA || type > RecordType.VOID) return undefined;
  if (b.readUInt32LE(12) !== segSeq >>> 0) return undefined;
  if (RECORD_HEADER_SIZE + length > room) return undefined;
  return { type: type as RecordTypeCode, length, stream: b.readDoubleLE(16), crc: b.readUInt32LE(0) };
}

export function checkRecord(header: Buffer, payload: Uint8Array, crc: number): boolean {
  return crc32(payload, crc32(header.subarray(4, RECORD_HEADER_SIZE))) === crc;
}

/** The checkpoint file: the LSN replay starts from, with its CRC. */
export function encodeCheckpoint(lsn: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeDoubleLE(lsn, 0);
  b.writeUInt32LE(crc32(b.subarray(0, 8)), 8);
  return b;
}

export function decodeCheckpoint(b: Buffer): number | undefined {
  if (b.length !== 12 || b.readUInt32LE(8) !== crc32(b.subarray(0, 8))) return undefined;
  return b.readDoubleLE(0);
}
