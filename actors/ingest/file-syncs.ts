// The Part-10 files the journal still covers: written (and renamed into place) without an fsync at
// commit, they are fsync'd here, with their directories, before a checkpoint lets the journal reuse the
// segments holding their bytes. Usually: fsync each, many at once, so the file system folds them into few
// journal commits. Many small ones (a checkpoint after a burst of small instances): one syncfs(2) of the
// spool's file system instead, which writes back every dirty inode and directory there with one journal
// commit and one cache flush. Measured here (ext4, 3000 files of 4 KB): 32 parallel fsyncs 570–640 ms,
// during which the journal's own fdatasync waits behind them (a 0.7 s stall of every acknowledgement);
// syncfs 70–100 ms. Large files keep their fsyncs: their cost is their bytes, and one syncfs of 64 MB
// stalls the acknowledgements' fdatasync longer than fsyncs interleaved with it (CT 512 KB: 103–106 vs
// 114–129 inst/s). Node has no syncfs binding: coreutils `sync --file-system` (Debian essential) is it.
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import path from 'node:path';

const PARALLEL = 32;
/** From this many files on, averaging at most SYNCFS_AVERAGE_MAX bytes, one syncfs instead of a fsync per file and directory. */
export const SYNCFS_FROM = 64;
export const SYNCFS_AVERAGE_MAX = 64 * 1024;

/** syncfs(2) of the file system holding `dir`; rejects on its error (Linux ≥ 5.8 reports writeback errors). */
export type SyncFs = (dir: string) => Promise<void>;

export const syncFileSystem: SyncFs = (dir) =>
  new Promise((resolve, reject) =>
    execFile('sync', ['--file-system', dir], (err, _out, stderr) => (err ? reject(Object.assign(new Error(`syncfs ${dir}: ${stderr.trim() || err.message}`), { code: 'EIO' })) : resolve())),
  );

export class FileSyncs {
  #dir: string;
  #pending: Array<{ lsn: number; file: string; size: number }> = [];
  #syncFs: SyncFs;

  constructor(dir: string, syncFs: SyncFs = syncFileSystem) {
    this.#dir = dir;
    this.#syncFs = syncFs;
  }

  /** `file` (relative to the spool, `size` bytes) was committed at `lsn`. */
  add(lsn: number, file: string, size: number): void {
    this.#pending.push({ lsn, file, size });
  }

  /** Make every file committed before `lsn` durable, with the directories holding them (down from instances/); how many. */
  async syncBefore(lsn: number): Promise<number> {
    const due = this.#pending.filter((p) => p.lsn < lsn);
    if (due.length === 0) return 0;
    this.#pending = this.#pending.filter((p) => p.lsn >= lsn);
    try {
      if (due.length >= SYNCFS_FROM && due.reduce((n, d) => n + d.size, 0) <= SYNCFS_AVERAGE_MAX * due.length) {
        await this.#syncFs(this.#dir);
        return due.length;
      }
      const dirs = new Set<string>();
      await parallel(due, async ({ file }) => {
        await syncPath(path.join(this.#dir, file));
        for (let d = path.dirname(file); d !== '.' && d !== '/'; d = path.dirname(d)) dirs.add(d);
      });
      await parallel([...dirs], (d) => syncPath(path.join(this.#dir, d)));
    } catch (err) {
      this.#pending.push(...due); // the next checkpoint tries again
      throw err;
    }
    return due.length;
  }
}

/** fsync a file or directory; one that is gone (retention, a replaced duplicate) needs nothing. */
async function syncPath(p: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function parallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
}
