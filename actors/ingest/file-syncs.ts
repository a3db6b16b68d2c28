// The Part-10 files the journal still covers: written (and renamed into place) without an fsync at
// commit, they are fsync'd here, with their directories, before a checkpoint lets the journal reuse the
// segments holding their bytes. Many at once, so the file system folds them into few journal commits.
import * as fsp from 'node:fs/promises';
import path from 'node:path';

const PARALLEL = 32;

export class FileSyncs {
  #dir: string;
  #pending: Array<{ lsn: number; file: string }> = [];

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** `file` (relative to the spool) was committed at `lsn`. */
  add(lsn: number, file: string): void {
    this.#pending.push({ lsn, file });
  }

  /** fsync every file committed before `lsn`, then the directories holding them (down from instances/). */
  async syncBefore(lsn: number): Promise<number> {
    const due = this.#pending.filter((p) => p.lsn < lsn);
    if (due.length === 0) return 0;
    this.#pending = this.#pending.filter((p) => p.lsn >= lsn);
    try {
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
