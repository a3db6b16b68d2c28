// What the spool does at open with the journal written since the last checkpoint (before it serves):
// every COMMIT not yet in LMDB (LSN above the 'applied' mark) has its redo list applied, with the mark,
// in one transaction each; every committed instance still indexed at that path gets its Part-10 file
// written again from its DATA records (the file may not have reached the disk before a power loss).
// DATA records go to a file per stream under incoming/ as they are read: memory stays flat whatever
// the instance size. Streams that never committed were never acknowledged: their files are removed.
// Idempotent: killed half-way, the next open does it again from the same checkpoint.
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { deserialize } from 'node:v8';
import type { Database, RootDatabase, TransactionFlags } from 'lmdb';
import type { Logger } from 'pino';
import type { Journal, ReplayReport } from './journal.ts';
import type { RedoCapture, RedoOp } from './redo-capture.ts';
import type { InstanceRecord } from './spool.ts';

/** transactionSync flags: abortable, commit now, do not wait for the flush (the journal is the durable copy). */
export const NO_SYNC_FLUSH_TXN = 0x10003 as TransactionFlags;

export type CommitPayload = { record: InstanceRecord; ops: RedoOp[] };

export type ReplayDeps = {
  dir: string;
  db: RootDatabase;
  meta: Database<number, string>;
  instances: Database<InstanceRecord, string>;
  redo: RedoCapture;
  log: Logger;
  /** A replayed Part-10 file, to be synced by the next checkpoint. */
  placed(lsn: number, fileRel: string, size: number): void;
};

export type SpoolReplayReport = ReplayReport & { applied: number; filesWritten: number; missing: number };

export async function replaySpool(journal: Journal, deps: ReplayDeps): Promise<SpoolReplayReport> {
  const appliedBefore = deps.meta.get('applied') ?? 0;
  const streams = new Map<number, { fh: FileHandle; file: string; size: number }>();
  let applied = 0;
  let filesWritten = 0;
  let missing = 0;
  const report = await journal.replay({
    data: async (stream, bytes) => {
      let s = streams.get(stream);
      if (!s) {
        const file = path.join(deps.dir, 'incoming', `replay-${stream}.part`);
        s = { fh: await fsp.open(file, 'w'), file, size: 0 };
        streams.set(stream, s);
      }
      await s.fh.write(bytes, 0, bytes.length, s.size);
      s.size += bytes.length;
    },
    commit: async (lsn, stream, payload) => {
      const { record, ops } = deserialize(payload) as CommitPayload;
      if (lsn > appliedBefore) {
        deps.db.transactionSync(() => {
          deps.redo.apply(ops);
          deps.meta.put('applied', lsn);
        }, NO_SYNC_FLUSH_TXN);
        applied++;
      }
      const s = streams.get(stream);
      streams.delete(stream);
      if (s) await s.fh.close();
      const row = deps.instances.get(record.sopInstanceUid);
      if (row?.path !== record.path) {
        if (s) await fsp.rm(s.file, { force: true }); // replaced or removed since
        return;
      }
      if (!s || s.size !== record.size) {
        missing++;
        deps.log.error({ sopInstanceUid: record.sopInstanceUid, expected: record.size, found: s?.size ?? 0 }, 'journal replay: committed instance without all its bytes');
        if (s) await fsp.rm(s.file, { force: true });
        return;
      }
      const final = path.join(deps.dir, record.path);
      await fsp.mkdir(path.dirname(final), { recursive: true });
      await fsp.rename(s.file, final);
      filesWritten++;
      deps.placed(lsn, record.path, record.size);
    },
  });
  for (const s of streams.values()) {
    await s.fh.close();
    await fsp.rm(s.file, { force: true });
  }
  if (report.records > 0) deps.log.info({ ...report, applied, filesWritten, missing, discardedStreams: streams.size }, 'journal replayed');
  return { ...report, applied, filesWritten, missing };
}
