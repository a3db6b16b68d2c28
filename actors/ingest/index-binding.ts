// How the spool's LMDB index follows the journal: a group's decisions are computed in a transaction
// that is rolled back (capture), and applied after the journal's flush in one transaction that commits
// without a sync of its own, with the group's last LSN as 'applied'; nothing else writes in between
// (serializeWrites). A checkpoint first makes durable what the journal will stop covering: the Part-10
// files committed before it (waiting for those written after their acknowledgement), then LMDB itself
// (mdb_env_sync).
import type { Database, RootDatabase } from 'lmdb';
import type { FileSyncs } from './file-syncs.ts';
import type { Journal } from './journal.ts';
import { serializeWrites } from './redo-capture.ts';
import { NO_SYNC_FLUSH_TXN } from './spool-replay.ts';

const ROLLBACK = new Error('capture only: rolled back');

/** `fileSyncs()` is undefined when fsync is off (tests, benchmarks): checkpoints then sync nothing. */
export function bindIndexToJournal(
  journal: Journal, db: RootDatabase, meta: Database<number, string>, fileSyncs: () => FileSyncs | undefined, filesWrittenBefore: (lsn: number) => Promise<void>,
): void {
  journal.capture = (run) => {
    try {
      db.transactionSync(() => {
        run();
        throw ROLLBACK;
      }, NO_SYNC_FLUSH_TXN);
    } catch (err) {
      if (err !== ROLLBACK) throw err;
    }
  };
  journal.apply = (run, lastLsn) => {
    db.transactionSync(() => {
      run();
      meta.put('applied', lastLsn);
    }, NO_SYNC_FLUSH_TXN);
  };
  serializeWrites(db, () => journal.whenQuiet(), NO_SYNC_FLUSH_TXN);
  journal.beforeCheckpoint = async (lsn) => {
    await filesWrittenBefore(lsn); // files written after their acknowledgement: the journal covers them until then
    const files = fileSyncs();
    if (!files) return;
    await files.syncBefore(lsn);
    await syncIndex(db);
  };
}

/** mdb_env_sync(force): everything LMDB committed so far is on disk (the database is opened with noSync). */
export function syncIndex(db: RootDatabase): Promise<void> {
  const env = db as unknown as { sync(cb: (err?: Error) => void): void };
  return new Promise((resolve, reject) => env.sync((err) => (err ? reject(err) : resolve())));
}
