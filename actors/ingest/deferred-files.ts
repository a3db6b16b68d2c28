// The Part-10 files of instances acknowledged from memory. An instance small enough to be held whole
// (IncomingInstance) reaches the journal only in its COMMIT's group write, so its acknowledgement costs
// one write and the shared fdatasync; its file is written here, after the C-STORE-RSP, off that path.
//
// When: once ingest pauses (no new file for `idleMs`), when the memory held passes half the budget, when
// a reader needs the file itself (whenWritten), and at the latest before the next checkpoint (≤ 10 s),
// which waits for every file committed before it (the journal keeps covering them until they are
// written and synced). Why not at once: on ext4 (data=ordered) each new file's data and metadata are
// flushed by the next journal fdatasync, measured +0.3 ms per 4 KB instance on the acknowledgement path
// of the one after it. Until then the journal is the durable copy, the forwarder sends from the bytes
// held here (heldFile), and after a crash replay writes the files from the journal. A failed write
// (disk full, EIO) keeps its bytes and is retried with backoff; the checkpoint cannot pass it meanwhile.
//
// The memory held is bounded: `reserve` refuses past the budget, and the instance is then streamed to
// a temp file as large ones are (IncomingInstance).
import path from 'node:path';
import type { Logger } from 'pino';
import { toSpoolError, writeFully } from './spool-fs.ts';
import type { SpoolFsOps } from './spool-fs.ts';

type Entry = {
  lsn: number;
  /** Where its stream's bytes begin in the journal (≤ lsn): the journal covers the file from there. */
  from: number;
  file: string;
  chunks: Uint8Array[];
  size: number;
  /** The attempt under way (rejects when it fails); undefined until the write is started. */
  attempt: Promise<void> | undefined;
  /** Resolves once the file is written. */
  written: Promise<void>;
  done: () => void;
  failures: number;
};

export type DeferredFilesDeps = {
  dir: string;
  ops: SpoolFsOps;
  /** mkdir -p of a directory relative to the spool (memoized by the spool). */
  ensureDir(dirRel: string): Promise<void>;
  /** A file is written: its fsync is the next checkpoint's. */
  written(lsn: number, file: string, size: number): void;
  /** A write failed (it is retried): the journal may hold space it could give back. */
  failed?(): void;
  logger: Logger;
  /** Bytes held in memory at most (instances waiting for their file, and those being received). */
  budget: number;
  /** Write the files once no new one came for this long (default 100 ms). */
  idleMs?: number;
};

const RETRY_MS = [1000, 2000, 5000, 10_000, 30_000];
/** Files written at once: the thread pool (4) keeps room for the journal's fdatasync. */
const PARALLEL = 2;

export class DeferredFiles {
  #deps: DeferredFilesDeps;
  #entries = new Map<string, Entry>();
  /** Entries not started yet, oldest first. */
  #waiting: Entry[] = [];
  #running = 0;
  #used = 0;
  #closed = false;
  #timers = new Set<NodeJS.Timeout>();
  #idle: NodeJS.Timeout | undefined;
  #draining = false;
  #seq = 0;

  constructor(deps: DeferredFilesDeps) {
    this.#deps = deps;
  }

  /** Bytes held now. */
  get held(): number {
    return this.#used;
  }

  /** Files not written yet. */
  get pending(): number {
    return this.#entries.size;
  }

  /** Hold `n` more bytes in memory; false past the budget (the caller streams instead). */
  reserve(n: number): boolean {
    if (this.#used + n > this.#deps.budget) return false;
    this.#used += n;
    return true;
  }

  release(n: number): void {
    this.#used -= n;
  }

  /**
   * Write `file` (relative to the spool) from `chunks`, committed at `lsn`, its bytes in the journal from
   * `from`; takes over their reservation.
   */
  add(lsn: number, file: string, chunks: Uint8Array[], size: number, from = lsn): void {
    let done!: () => void;
    const written = new Promise<void>((resolve) => (done = resolve));
    const entry: Entry = { lsn, from, file, chunks, size, attempt: undefined, written, done, failures: 0 };
    this.#entries.set(file, entry);
    this.#waiting.push(entry);
    if (this.#used > this.#deps.budget / 2) return this.#pump();
    this.#draining = false;
    if (this.#idle) this.#idle.refresh();
    else {
      this.#idle = setTimeout(() => {
        this.#draining = true;
        this.#pump();
      }, this.#deps.idleMs ?? 100);
      this.#idle.unref();
    }
  }

  /** The whole Part-10 file while it is held here (not written yet), else undefined: read the file. */
  heldFile(file: string): Uint8Array | undefined {
    const entry = this.#entries.get(file);
    if (!entry) return undefined;
    if (entry.chunks.length > 1) entry.chunks = [Buffer.concat(entry.chunks)]; // the fragments' buffers go
    return entry.chunks[0];
  }

  /** Resolves once `file` (relative to the spool) is written, at once if it is not waiting; starts it now. */
  whenWritten(file: string): Promise<void> {
    const entry = this.#entries.get(file);
    if (!entry) return Promise.resolve();
    if (!entry.attempt) this.#startNow(entry);
    return entry.written;
  }

  /**
   * The file will not be needed (its row was replaced by a newer copy): a write not started is dropped,
   * one under way is waited for. Then the caller removes whatever is there.
   */
  async forget(file: string): Promise<void> {
    const entry = this.#entries.get(file);
    if (!entry) return;
    if (entry.attempt) {
      await entry.written;
      return;
    }
    const i = this.#waiting.indexOf(entry);
    if (i >= 0) this.#waiting.splice(i, 1);
    this.#entries.delete(file);
    this.#used -= entry.size;
    entry.chunks = [];
    entry.done();
  }

  /** Where the journal's oldest bytes of a file that failed to be written begin (the checkpoint stops there). */
  failingFrom(): number | undefined {
    let from: number | undefined;
    for (const e of this.#entries.values()) if (e.failures > 0 && (from === undefined || e.from < from)) from = e.from;
    return from;
  }

  /** Every file committed before `lsn` written; rejects if one of them cannot be (the checkpoint must wait). */
  async writtenBefore(lsn: number): Promise<void> {
    const due = [...this.#entries.values()].filter((e) => e.lsn < lsn);
    for (const e of due) if (!e.attempt) this.#startNow(e);
    await Promise.all(due.map((e) => e.attempt));
  }

  /** No more retries; what is not written stays in the journal (replay writes it at the next start). */
  close(): void {
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  /** Start waiting writes, oldest first, while there is room: all of them once idle, else while memory is short. */
  #pump(): void {
    while (this.#running < PARALLEL && this.#waiting.length > 0 && (this.#draining || this.#used > this.#deps.budget / 2)) {
      const entry = this.#waiting.shift()!;
      if (!entry.attempt) this.#start(entry);
    }
  }

  /** Out of turn (a reader or a checkpoint needs it). */
  #startNow(entry: Entry): void {
    const i = this.#waiting.indexOf(entry);
    if (i >= 0) this.#waiting.splice(i, 1);
    this.#start(entry);
  }

  #start(entry: Entry): void {
    this.#running++;
    entry.attempt = this.#write(entry);
    entry.attempt.then(
      () => {
        this.#running--;
        this.#entries.delete(entry.file);
        this.#used -= entry.size;
        entry.chunks = [];
        this.#deps.written(entry.lsn, entry.file, entry.size);
        if (entry.failures > 0) this.#deps.logger.info({ file: entry.file, failures: entry.failures }, 'spool file written after earlier failures');
        entry.done();
        this.#pump();
      },
      (err: unknown) => {
        this.#running--;
        const error = toSpoolError(err, 'write after acknowledgement');
        entry.failures++;
        const delay = RETRY_MS[Math.min(entry.failures, RETRY_MS.length) - 1];
        this.#deps.failed?.();
        if (entry.failures === 1) {
          this.#deps.logger.error(
            { file: entry.file, code: error.code, errno: error.errno, retryInMs: delay },
            `${error.message}: the instance is safe in the journal; retrying`,
          );
        }
        if (this.#closed) return;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (!this.#closed) this.#start(entry);
        }, delay);
        timer.unref();
        this.#timers.add(timer);
      },
    );
  }

  async #write(entry: Entry): Promise<void> {
    await this.#deps.ensureDir(path.dirname(entry.file));
    // Under incoming/ first, then renamed: a reader of instances/ never sees a partial file. No fsync: the
    // journal covers the bytes until the checkpoint syncs the file.
    const temp = path.join(this.#deps.dir, 'incoming', `${process.pid}-w${(++this.#seq).toString(36)}.part`);
    const fh = await this.#deps.ops.open(temp, 'w', 0o644);
    try {
      await writeFully(this.#deps.ops, fh, entry.chunks, 0);
    } finally {
      await fh.close();
    }
    try {
      await this.#deps.ops.rename(temp, path.join(this.#deps.dir, entry.file));
    } catch (err) {
      await this.#deps.ops.unlink(temp).catch(() => {});
      throw err;
    }
  }
}
