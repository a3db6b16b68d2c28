// Reading the journal from a checkpoint to its end: record by record, through END records into the
// segment with the next seq, until a record is torn, stale (another generation) or absent. Each record
// is read on its own (memory stays flat: a DATA record is at most one append's bytes).
import * as fs from 'node:fs';
import { RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, checkRecord, decodeRecordHeader } from './journal-format.ts';
import type { SegmentPool, Slot } from './journal-segments.ts';

export type ReplayHandler = {
  data(stream: number, bytes: Buffer): void | Promise<void>;
  commit(lsn: number, stream: number, payload: Buffer): void | Promise<void>;
};

export type ReplayReport = { from: number; to: number; records: number; commits: number };

/** Where reading stopped: the slot and offset of the tail (an END is the tail when no segment follows it). */
export async function scanLog(
  pool: SegmentPool, cp: number, handler: ReplayHandler,
): Promise<{ slot: Slot | undefined; seq: number; off: number; report: ReplayReport }> {
  const size = pool.segmentSize;
  let seq = Math.floor(cp / size);
  let off = Math.max(cp - seq * size, SEGMENT_HEADER_SIZE);
  let slot = pool.bySeq(seq);
  const report: ReplayReport = { from: cp, to: cp, records: 0, commits: 0 };
  const head = Buffer.alloc(RECORD_HEADER_SIZE);
  while (slot) {
    fs.readSync(slot.fd, head, 0, RECORD_HEADER_SIZE, off);
    const h = decodeRecordHeader(head, seq, size - off);
    if (!h) break;
    const payload = Buffer.alloc(h.length);
    if (h.length > 0) fs.readSync(slot.fd, payload, 0, h.length, off + RECORD_HEADER_SIZE);
    if (!checkRecord(head, payload, h.crc)) break;
    report.records++;
    if (h.type === RecordType.END) {
      const next = pool.bySeq(seq + 1);
      if (!next) break; // the END is the tail: sealing writes it again, harmlessly
      slot = next;
      seq++;
      off = SEGMENT_HEADER_SIZE;
      continue;
    }
    if (h.type === RecordType.DATA) await handler.data(h.stream, payload);
    else if (h.type === RecordType.COMMIT) {
      report.commits++;
      await handler.commit(seq * size + off, h.stream, payload);
    }
    off += RECORD_HEADER_SIZE + h.length;
  }
  report.to = seq * size + off;
  return { slot, seq, off, report };
}
