// One instance being received into the spool. While it is small (up to `memoryLimit`, within the
// spool's memory budget) its fragments are only held: commit() hands them to the journal, which writes
// them with the COMMIT in its group's one write, and its Part-10 file is written after the acknowledgement
// (DeferredFiles). Past that, it streams: the fragments held so far and every later one are appended,
// in order, to the journal (the durable copy) and to a temp file under incoming/ (the Part-10 file, no
// fsync) as they arrive, both written before more is asked for (a large instance is never held whole in
// memory: real backpressure). commit() makes it durable and indexed (see Spool); discard() forgets it.
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { SpoolError, toSpoolError, writeFully } from './spool-fs.ts';
import type { SpoolFsOps } from './spool-fs.ts';
import type { CommitInput, InstanceRecord } from './spool.ts';
import type { Journal, JournalStream } from './journal.ts';

/** What an IncomingInstance needs from its Spool. */
export type IncomingHost = {
  readonly ops: SpoolFsOps;
  readonly fsync: boolean;
  readonly highWaterMark: number;
  readonly logger: Logger;
  readonly journal: Journal;
  /** Whether to SHA-256 the dataset as it streams. */
  hash(): boolean;
  isClosed(): boolean;
  /** An instance up to this size may be held in memory until its commit. */
  readonly memoryLimit: number;
  /** Hold `n` more bytes in memory (false: over the spool's budget); release() gives them back. */
  reserve(n: number): boolean;
  release(n: number): void;
  /** Commit an instance held in memory (its file is written after); takes over the reservation of `size` bytes. */
  placeHeld(
    chunks: Uint8Array[], size: number, input: CommitInput & { sha256?: string }, stream: JournalStream, extra?: (record: InstanceRecord) => void,
  ): Promise<InstanceRecord>;
  /** Move the temp file to its final place and commit it through the journal, durably. */
  place(
    tempPath: string, size: number, input: CommitInput & { sha256?: string }, stream: JournalStream, extra?: (record: InstanceRecord) => void,
  ): Promise<InstanceRecord>;
};

export type IncomingState = 'open' | 'committing' | 'committed' | 'discarded' | 'failed';

export class IncomingInstance {
  /** Absolute path of the temp file under <spool>/incoming/. */
  readonly tempPath: string;
  /** Resolves when the instance reaches a final state (committed, discarded or failed); never rejects. */
  readonly finished: Promise<void>;
  #host: IncomingHost;
  #fh: Promise<FileHandle> | undefined;
  /** The fragments while the instance is held in memory; undefined once it streams. */
  #held: Uint8Array[] | undefined = [];
  #fhClosed = false;
  #queue: Uint8Array[] = [];
  #queued = 0; // bytes accepted, not yet handed to the OS
  #inflight = 0; // bytes in the writev now running
  #position = 0; // bytes written to the file
  #accepted = 0;
  #pumping = false;
  #error: SpoolError | undefined;
  #state: IncomingState = 'open';
  /** SHA-256 of the dataset bytes (everything written after the header), as they stream by, when wanted. */
  #hash: Hash | undefined;
  #stream: JournalStream;
  #drainWaiters: Array<() => void> = [];
  #idleWaiters: Array<() => void> = [];
  #finish!: () => void;

  /** Use Spool.begin(). */
  constructor(host: IncomingHost, tempPath: string, header: Uint8Array, stream: JournalStream) {
    this.#host = host;
    this.#stream = stream;
    this.#hash = host.hash() ? createHash('sha256') : undefined;
    this.tempPath = tempPath;
    this.finished = new Promise((resolve) => (this.#finish = resolve));
    this.#take(header);
  }

  get state(): IncomingState {
    return this.#state;
  }

  /** Bytes accepted so far, header included: the file's size once everything is written. */
  get bytesWritten(): number {
    return this.#accepted;
  }

  /** The first write error (DISK_FULL, IO_ERROR), if any; commit() will reject with it. */
  get error(): SpoolError | undefined {
    return this.#error;
  }

  /**
   * Append a fragment. The spool keeps a reference to `chunk` (no copy) until it is written, so the
   * caller must not modify it afterwards, as with stream.Writable. Returns false when the caller should
   * pause until drained(). After a write error, fragments are dropped (returns true, so the producer
   * can run to the end of the message) and commit() rejects with the error.
   */
  write(chunk: Uint8Array): boolean {
    if (this.#state !== 'open') throw new SpoolError('CLOSED', `write to an instance that is ${this.#state}`);
    if (this.#error) return true;
    this.#hash?.update(chunk);
    this.#take(chunk);
    return this.#belowHighWater();
  }

  /** Resolves when the producer may write again (also on error, commit or discard). */
  drained(): Promise<void> {
    if (this.#belowHighWater()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /**
   * Make the instance durable and indexed; resolves only when it is (see Spool for the steps). `extra`
   * runs inside the index transaction: its writes (putSync/put/remove on sub-databases of spool.db, e.g.
   * outbound queue entries) commit with the row or not at all; throwing aborts the whole commit. On any
   * failure the file is removed, nothing is indexed, and the promise rejects with a SpoolError (or with
   * what `extra` threw).
   */
  commit(input: CommitInput, extra?: (record: InstanceRecord) => void): Promise<InstanceRecord> {
    if (this.#state !== 'open') {
      const code = this.#state === 'discarded' ? 'DISCARDED' : 'CLOSED';
      return Promise.reject(new SpoolError(code, `commit of an instance that is ${this.#state}`));
    }
    this.#state = 'committing';
    this.#wake();
    return this.#commit(input, extra);
  }

  /** Stop writing and remove the temp file; nothing is indexed. A no-op once commit() has started. */
  async discard(): Promise<void> {
    if (this.#state !== 'open') return this.finished;
    this.#state = 'discarded';
    this.#error ??= new SpoolError('DISCARDED', 'instance discarded');
    this.#dropHeld();
    this.#dropQueue();
    await this.#idle();
    await this.#removeTemp();
    this.#host.journal.abandon(this.#stream);
    this.#finish();
  }

  async #commit(input: CommitInput, extra?: (record: InstanceRecord) => void): Promise<InstanceRecord> {
    try {
      if (this.#host.isClosed()) throw new SpoolError('CLOSED', 'spool is closed');
      await this.#idle();
      if (this.#error) throw this.#error;
      const sha256 = this.#hash?.digest('hex');
      const held = this.#held;
      if (held) {
        this.#held = undefined; // the spool owns the bytes and their reservation now
        // One buffer of the instance's own size: the fragments are views into the socket's 64 KB reads,
        // and holding a 4 KB view until the file is written would hold its whole read buffer.
        const bytes = Buffer.concat(held, this.#accepted);
        const record = await this.#host.placeHeld([bytes], this.#accepted, { ...input, ...(sha256 !== undefined ? { sha256 } : {}) }, this.#stream, extra);
        this.#state = 'committed';
        this.#host.journal.end(this.#stream);
        this.#finish();
        return record;
      }
      // Renamed while still open (Linux allows it); the close is not on the acknowledgement path.
      const record = await this.#host.place(this.tempPath, this.#position, { ...input, ...(sha256 !== undefined ? { sha256 } : {}) }, this.#stream, extra);
      this.#state = 'committed';
      this.#host.journal.end(this.#stream);
      void this.#closeFile().finally(() => this.#finish());
      return record;
    } catch (err) {
      this.#state = 'failed';
      this.#dropHeld();
      await this.#removeTemp();
      this.#host.journal.abandon(this.#stream);
      this.#finish();
      throw err;
    }
  }

  /** Hold the fragment while the instance fits in memory, else stream it (and what was held before it). */
  #take(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    const held = this.#held;
    if (held) {
      if (this.#accepted + chunk.byteLength <= this.#host.memoryLimit && this.#host.reserve(chunk.byteLength)) {
        held.push(chunk);
        this.#accepted += chunk.byteLength;
        return;
      }
      this.#dropHeld();
      this.#fh = this.#host.ops.open(this.tempPath, 'wx', 0o644);
      this.#fh.catch(() => {}); // the pump reports it
      this.#accepted = 0;
      for (const c of held) this.#enqueue(c);
    }
    this.#enqueue(chunk);
  }

  /** Stop holding: give the reservation back (the fragments go to the pump, or nowhere). */
  #dropHeld(): void {
    if (!this.#held) return;
    this.#host.release(this.#accepted);
    this.#held = undefined;
  }

  #enqueue(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
    this.#accepted += chunk.byteLength;
    if (!this.#pumping) void this.#pump();
  }

  /** One writev at a time; whatever arrives meanwhile goes out together in the next one (coalescing without copying). */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      const fh = await this.#fh!;
      while (this.#queue.length > 0 && !this.#error) {
        const batch = this.#queue;
        this.#queue = [];
        this.#inflight = this.#queued;
        this.#queued = 0;
        // The Part-10 file and the journal, side by side; a journal failure is the instance's failure.
        await Promise.all([
          writeFully(this.#host.ops, fh, batch, this.#position),
          this.#host.journal.append(this.#stream, batch).catch((err: unknown) => {
            throw toSpoolError(err, 'journal write');
          }),
        ]);
        this.#position += this.#inflight;
        this.#inflight = 0;
        this.#wake();
      }
    } catch (err) {
      this.#fail(toSpoolError(err, this.#position === 0 && this.#inflight === 0 ? 'create' : 'write'));
    } finally {
      this.#pumping = false;
      this.#inflight = 0;
      this.#wake();
    }
  }

  #fail(err: SpoolError): void {
    if (this.#error) return;
    this.#error = err;
    this.#dropQueue();
    this.#host.logger.warn({ tempPath: this.tempPath, code: err.code, errno: err.errno }, err.message);
  }

  #dropQueue(): void {
    this.#queue = [];
    this.#queued = 0;
  }

  #belowHighWater(): boolean {
    return this.#state !== 'open' || this.#error !== undefined || this.#queued + this.#inflight < this.#host.highWaterMark;
  }

  #wake(): void {
    if (this.#drainWaiters.length > 0 && this.#belowHighWater()) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
    if (this.#idleWaiters.length > 0 && !this.#pumping && (this.#queue.length === 0 || this.#error)) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves when no write is running and none is queued (or writing has failed). */
  #idle(): Promise<void> {
    if (!this.#pumping && (this.#queue.length === 0 || this.#error)) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async #closeFile(): Promise<void> {
    if (this.#fhClosed || !this.#fh) return;
    this.#fhClosed = true;
    try {
      await (await this.#fh).close();
    } catch {
      // never opened, or close failed after fsync succeeded: nothing left to lose
    }
  }

  async #removeTemp(): Promise<void> {
    if (!this.#fh) return; // held in memory: there is no temp file
    await this.#closeFile();
    try {
      await this.#host.ops.unlink(this.tempPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: never created, or already renamed into place. Otherwise the next open() removes it.
      if (code !== 'ENOENT') this.#host.logger.warn({ tempPath: this.tempPath, err: String(err) }, 'could not remove spool temp file');
    }
  }
}
