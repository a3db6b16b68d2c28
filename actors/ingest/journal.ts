// The write-ahead journal: the ingest path's one durable barrier. Every instance's bytes are appended
// as DATA records as they arrive (any number of streams interleaved, each record tagged with its
// stream), and its COMMIT record (the instance row and the routing decision, built by the caller) is
// written by a group commit: everything committed meanwhile, on any association, rides ONE fdatasync.
// A group: (1) the owner `capture`s each member's decision (its LMDB writes, run in one transaction
// that is then aborted, so later members see earlier ones' writes), (2) the COMMIT records are written,
// (3) one fdatasync on the thread pool (the event loop keeps receiving; commits arriving now form the
// next group), (4) the owner `apply`s the captured writes in one LMDB transaction without a sync of
// its own, then every member resolves. The index never gets ahead of the journal. Between (1) and (4)
// the owner must let no other write reach the same database (`whenQuiet`).
//
// Positions are LSNs: seq × segmentSize + offset. A checkpoint is an LSN from which replay starts: every
// instance committed before it is in its Part-10 file and in LMDB, both synced (the owner's
// `beforeCheckpoint` does that), and no stream still open started before it. Segments wholly before
// the checkpoint are free for reuse. Replay (once, at open) reads from the checkpoint to the first
// record that is torn or stale, hands DATA and COMMIT records to the owner, then seals the tail with
// an END record and continues in a fresh segment, so nothing written after a crash is ever read.
import * as fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import {
  RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, decodeCheckpoint, encodeCheckpoint, encodeRecordHeader,
} from './journal-format.ts';
import type { RecordTypeCode } from './journal-format.ts';
import { SegmentPool, realJournalIo, split, writeAll } from './journal-segments.ts';
import { scanLog } from './journal-scan.ts';
import type { ReplayHandler, ReplayReport } from './journal-scan.ts';
import type { JournalIo, Slot } from './journal-segments.ts';

export type { JournalIo } from './journal-segments.ts';

export type JournalOptions = {
  dir: string;
  /** Bytes per segment file (default 16 MiB); an existing journal keeps its own. */
  segmentSize?: number;
  /** Segment files kept for reuse (default 8); more are made while a large instance needs them. */
  segments?: number;
  /** fdatasync at each group commit (default true). */
  fsync?: boolean;
  io?: Partial<JournalIo>;
  logger?: Logger;
};

/** One instance's bytes in the journal; its id is the LSN of its first record. */
export type JournalStream = { id: number | undefined };

export type { ReplayHandler, ReplayReport } from './journal-scan.ts';

/** What a member's build returns: its COMMIT payload and how to apply its writes once durable. */
export type Built = { payload: Uint8Array; apply: () => void };

/** Where a group's time went, summed over the groups so far (milliseconds): the benchmark prints it. */
export type GroupTimes = { groups: number; commits: number; capture: number; write: number; flush: number; apply: number };
type Pending = {
  stream: JournalStream; build: () => Built; data: readonly Uint8Array[] | undefined; resolve: (lsn: number) => void; reject: (err: unknown) => void;
};
type Written = { slot: Slot; pos: number; stream: number; payload: Uint8Array; seq: number };
/** A group's records, contiguous in one segment: written with one call. */
type Batch = { slot: Slot | undefined; pos: number; buffers: Uint8Array[] };

const BUILD_FAILED = Symbol('build failed');

export class Journal {
  /** Runs a group's builds (the owner: in an index transaction it then aborts). */
  capture: (run: () => void) => void = (run) => run();
  /** Applies a durable group's writes (the owner: in one index transaction); gets the last COMMIT's LSN. */
  apply: (run: () => void, lastLsn: number) => void = (run) => run();
  /** Runs before a checkpoint is recorded: make everything committed before `lsn` durable outside the journal. */
  beforeCheckpoint: (lsn: number) => Promise<void> = async () => {};
  /**
   * The lowest LSN the owner still needs the journal for although its stream ended (a file that could
   * not be written yet): a checkpoint stops there instead of waiting for it, so the segments before it
   * are still freed (on a full disk they may hold the very space that file needs).
   */
  holdBack: () => number | undefined = () => undefined;
  #pool: SegmentPool;
  #io: JournalIo;
  #fsync: boolean;
  #log: Logger;
  #file: string;
  #cp: number;
  #cur: Slot | undefined;
  #pos = SEGMENT_HEADER_SIZE;
  #dirty = new Set<Slot>();
  #inflight = new Set<Promise<void>>();
  #open = new Set<JournalStream>();
  #pending: Pending[] = [];
  #flushing = false;
  #flushed: Promise<void> = Promise.resolve();
  #gate: Promise<void> | undefined;
  #rolling: Promise<void> | undefined;
  #checkpointing: Promise<void> | undefined;
  #failed: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #committedSinceCheckpoint = false;
  #busy: Promise<void> | undefined;
  #keep: number;
  readonly times: GroupTimes = { groups: 0, commits: 0, capture: 0, write: 0, flush: 0, apply: 0 };
  /** Why the journal takes no more commits (a failed fdatasync) and since when; undefined while it works. */
  stopped: { reason: string; since: string } | undefined;

  private constructor(pool: SegmentPool, io: JournalIo, fsync: boolean, log: Logger, file: string, cp: number, keep: number) {
    this.#pool = pool;
    this.#keep = keep;
    this.#io = io;
    this.#fsync = fsync;
    this.#log = log;
    this.#file = file;
    this.#cp = cp;
  }

  static async open(opts: JournalOptions): Promise<Journal> {
    const io = { ...realJournalIo, ...opts.io };
    const log = opts.logger ?? pino({ enabled: false });
    const pool = await SegmentPool.open(opts.dir, opts.segmentSize ?? 16 * 2 ** 20, opts.segments ?? 8, io, log);
    const file = path.join(opts.dir, 'checkpoint');
    let cp = readCheckpoint(file);
    if (cp === undefined) {
      if (pool.slots.some((s) => s.seq !== undefined)) throw new Error(`journal ${opts.dir}: segments but no readable checkpoint file`);
      cp = SEGMENT_HEADER_SIZE; // a new journal: seq 0 from its first record
      await io.writeCheckpoint(file, encodeCheckpoint(cp));
    }
    return new Journal(pool, io, opts.fsync ?? true, log, file, cp, opts.segments ?? 8);
  }

  get segmentSize(): number {
    return this.#pool.segmentSize;
  }

  get checkpointLsn(): number {
    return this.#cp;
  }

  /** Read from the checkpoint to the end of the log, then seal it. Once, before anything is appended. */
  async replay(handler: ReplayHandler): Promise<ReplayReport> {
    const { slot: found, seq, off, report } = await scanLog(this.#pool, this.#cp, handler);
    let slot = found;
    // Slots claimed past the tail (a crash before their END was durable) hold nothing acknowledged.
    for (const s of this.#pool.slots) if (s.seq !== undefined && s.seq > seq) s.seq = undefined;
    this.#dirty.clear();
    if (!slot) {
      // Nothing at the checkpoint's segment yet (a new journal): start it, zero-filled, nothing to seal.
      slot = this.#pool.free(seq, undefined) ?? (await this.#pool.create());
      this.#pool.claim(slot, seq);
      this.#cur = slot;
      this.#pos = SEGMENT_HEADER_SIZE;
      this.#dirty.add(slot);
    } else {
      // Seal: END where reading stopped (over whatever torn or stale bytes lie there), then a fresh segment.
      this.#cur = slot;
      this.#pos = off;
      this.#rollover();
    }
    await this.#syncDirty();
    this.#timer = setInterval(() => this.#committedSinceCheckpoint && void this.checkpoint().catch(() => {}), 10_000);
    this.#timer.unref();
    return report;
  }

  stream(): JournalStream {
    const s: JournalStream = { id: undefined };
    this.#open.add(s);
    return s;
  }

  /** The stream is finished (committed or discarded): it no longer holds the checkpoint back. */
  end(stream: JournalStream): void {
    this.#open.delete(stream);
  }

  /**
   * The stream's instance failed or was discarded: it ends, and an append still waiting stops. If it made
   * the pool grow, the extra segments are given back now, not at the next timed checkpoint: on a full
   * disk the next instance's file needs that space.
   */
  abandon(stream: JournalStream): void {
    this.end(stream);
    if (this.#pool.grown) void this.checkpoint().catch(() => {});
  }

  /** Append bytes of a stream; resolves once they are written (not yet durable: that is commit's). */
  async append(stream: JournalStream, chunks: readonly Uint8Array[]): Promise<void> {
    while (this.#gate || this.#rolling) await (this.#gate ?? this.#rolling);
    if (this.#failed) throw this.#failed;
    const cur = this.#current();
    let left = chunks.reduce((n, c) => n + c.byteLength, 0);
    let rest = [...chunks];
    const writes: Promise<void>[] = [];
    while (left > 0) {
      // Its instance failed (the file write, the disk) and was abandoned while this batch waited for a
      // slot: the rest is written for nobody, and on a full disk it takes the next instance's space.
      if (!this.#open.has(stream)) throw Object.assign(new Error('journal stream ended'), { code: 'ENDED' });
      let room = this.#pool.segmentSize - this.#pos - 2 * RECORD_HEADER_SIZE; // an END must always fit
      if (room <= 0) {
        if (!this.#pool.free(this.#minLiveSeq(), this.#cur)) {
          await this.#waitForSlot();
          while (this.#gate) await this.#gate;
          if (this.#failed) throw this.#failed;
          continue;
        }
        this.#rollover();
        room = this.#pool.segmentSize - this.#pos - 2 * RECORD_HEADER_SIZE;
      }
      const take = Math.min(left, room);
      if (this.#pos + take > this.#pool.segmentSize / 2) this.#spare(); // the next segment, ready before it is needed
      const [piece, after] = split(rest, take);
      rest = after;
      left -= take;
      const slot = this.#cur ?? cur;
      stream.id ??= slot.seq! * this.#pool.segmentSize + this.#pos;
      const header = encodeRecordHeader(RecordType.DATA, slot.seq!, stream.id, piece);
      writes.push(this.#track(writeAll(slot.fd, [header, ...piece], this.#pos)));
      this.#pos += RECORD_HEADER_SIZE + take;
      this.#dirty.add(slot);
    }
    await Promise.all(writes);
  }

  /**
   * Make the stream durable: `build` runs in the next group's capture and returns the COMMIT payload and
   * its writes. Resolves with the COMMIT's LSN once it and the stream's bytes are on disk and the writes
   * applied. A throwing `build` fails its own commit only. `data`: the stream's bytes, if it was held in
   * memory rather than appended: written as DATA records just before its COMMIT, in the group's one write.
   */
  commit(stream: JournalStream, build: () => Built, data?: readonly Uint8Array[]): Promise<number> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#pending.push({ stream, build, data, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true; // cleared by the loop itself, in the same turn it sees nothing pending
        this.#flushed = this.#flushLoop();
      }
    });
  }

  /** Resolves when no group is between its capture and its apply (other writers wait for this). */
  whenQuiet(): Promise<void> | undefined {
    return this.#busy;
  }

  /** Record a new checkpoint (see the header comment); segments wholly before it become reusable. */
  checkpoint(): Promise<void> {
    // One at a time; a call during one gets the next, which covers everything committed before the call.
    const running = this.#checkpointing;
    const next: Promise<void> = (running ? running.catch(() => {}).then(() => this.#checkpoint()) : this.#checkpoint()).finally(() => {
      if (this.#checkpointing === next) this.#checkpointing = undefined;
    });
    this.#checkpointing = next;
    return next;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#flushed;
    if (!this.#failed && this.#cur) await this.checkpoint().catch((err: unknown) => this.#log.warn({ err: String(err) }, 'journal checkpoint at close failed'));
    await Promise.allSettled([...this.#inflight]);
    this.#pool.close();
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.length > 0) await this.#group();
    } finally {
      this.#flushing = false; // in the same turn as the check above: a commit() after it starts a new loop
    }
  }

  async #group(): Promise<void> {
    let open!: () => void;
    this.#gate = new Promise((resolve) => (open = resolve));
    let quiet!: () => void;
    this.#busy = new Promise((resolve) => (quiet = resolve));
    try {
      // New appends wait at the gate: no record may lie unwritten before the COMMITs of this group.
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
      let members = this.#pending.splice(0);
      if (this.#failed) return members.forEach((m) => m.reject(this.#failed));
      let t = performance.now();
      const lap = (): number => -t + (t = performance.now());
      const built = this.#capture(members);
      members = built.members;
      if (members.length === 0) return;
      this.times.capture += lap();
      const written: Written[] = [];
      const lsns: number[] = [];
      const batch: Batch = { slot: undefined, pos: 0, buffers: [] };
      try {
        members.forEach((m, i) => {
          if (m.data) this.#appendDataSync(m.stream, m.data, batch);
          lsns.push(this.#appendSync(RecordType.COMMIT, m.stream, built.results[i].payload, written, batch));
        });
        this.#writeBatch(batch);
      } catch (err) {
        await this.#void(written);
        return members.forEach((m) => m.reject(err));
      }
      this.#gate = undefined; // appends may go on behind the COMMITs while they are flushed
      open();
      this.times.write += lap();
      try {
        await this.#syncDirty();
        this.times.flush += lap();
        this.apply(() => built.results.forEach((r) => r.apply()), lsns[lsns.length - 1]);
        this.times.apply += lap();
        this.times.groups++;
        this.times.commits += members.length;
      } catch (err) {
        // Not durable, or durable but not indexed (the index commit failed): the COMMITs become VOID.
        await this.#void(written);
        return members.forEach((m) => m.reject(err));
      }
      this.#committedSinceCheckpoint = true;
      members.forEach((m, i) => {
        // A stream written from memory stays open (holding the checkpoint back) until its owner has
        // taken over its bytes (the deferred file) and ends it: no checkpoint may pass it before.
        if (!m.data) this.end(m.stream);
        m.resolve(lsns[i]);
      });
    } finally {
      this.#gate = undefined;
      this.#busy = undefined;
      open();
      quiet();
    }
  }

  /** The builds of a group in one capture; a build that throws fails alone and the others run again. */
  #capture(group: Pending[]): { members: Pending[]; results: Built[] } {
    let members = group;
    for (;;) {
      const results: Built[] = [];
      let failed: { index: number; error: unknown } | undefined;
      try {
        this.capture(() => {
          members.forEach((m, index) => {
            try {
              results.push(m.build());
            } catch (error) {
              failed = { index, error };
              throw BUILD_FAILED;
            }
          });
        });
        return { members, results };
      } catch (err) {
        if (!failed) {
          members.forEach((m) => m.reject(err));
          return { members: [], results: [] };
        }
        members[failed.index].reject(failed.error);
        members = members.filter((_, i) => i !== failed!.index);
        if (members.length === 0) return { members, results: [] };
      }
    }
  }

  #appendSync(type: RecordTypeCode, stream: JournalStream, payload: Uint8Array, written: Written[], batch: Batch): number {
    if (this.#room() < payload.byteLength) this.#rolloverBatch(batch);
    const slot = this.#current();
    if (this.#room() < payload.byteLength) throw new Error(`journal record of ${payload.byteLength} bytes does not fit a segment`);
    const lsn = slot.seq! * this.#pool.segmentSize + this.#pos;
    stream.id ??= lsn;
    this.#record(type, stream.id, [payload], batch);
    written.push({ slot, pos: lsn - slot.seq! * this.#pool.segmentSize, stream: stream.id, payload, seq: slot.seq! });
    return lsn;
  }

  /** A held stream's bytes as DATA records (split where a segment ends). */
  #appendDataSync(stream: JournalStream, data: readonly Uint8Array[], batch: Batch): void {
    let rest = [...data];
    let left = rest.reduce((n, c) => n + c.byteLength, 0);
    while (left > 0) {
      if (this.#room() <= 0) this.#rolloverBatch(batch);
      const take = Math.min(left, this.#room());
      const [piece, after] = split(rest, take);
      rest = after;
      left -= take;
      const slot = this.#current();
      stream.id ??= slot.seq! * this.#pool.segmentSize + this.#pos;
      this.#record(RecordType.DATA, stream.id, piece, batch);
    }
  }

  /** Bytes a record's payload may take here: an END must always fit after it. */
  #room(): number {
    return this.#pool.segmentSize - this.#pos - 2 * RECORD_HEADER_SIZE;
  }

  #record(type: RecordTypeCode, stream: number, pieces: readonly Uint8Array[], batch: Batch): void {
    const slot = this.#current();
    if (batch.slot !== slot) {
      this.#writeBatch(batch);
      batch.slot = slot;
      batch.pos = this.#pos;
    }
    batch.buffers.push(encodeRecordHeader(type, slot.seq!, stream, pieces), ...pieces);
    this.#pos += RECORD_HEADER_SIZE + pieces.reduce((n, p) => n + p.byteLength, 0);
    this.#dirty.add(slot);
  }

  #writeBatch(batch: Batch): void {
    if (batch.slot && batch.buffers.length > 0) this.#io.writevSync(batch.slot.fd, batch.buffers, batch.pos);
    batch.slot = undefined;
    batch.buffers = [];
  }

  #rolloverBatch(batch: Batch): void {
    this.#writeBatch(batch);
    this.#rollover();
  }

  /** The one barrier: fdatasync of every segment written since the last one, oldest first. */
  async #syncDirty(): Promise<void> {
    const dirty = [...this.#dirty].sort((a, b) => a.seq! - b.seq!);
    this.#dirty.clear();
    if (!this.#fsync) return;
    try {
      for (const slot of dirty) await this.#io.datasync(slot.fd);
    } catch (err) {
      // After a failed fdatasync the kernel may have dropped the pages: nothing written since the last
      // good flush can be trusted. Fail everything until a restart replays what is durable.
      this.#failed = Object.assign(new Error(`journal fdatasync failed: ${(err as Error).message}`), { code: (err as { code?: string }).code ?? 'EIO' });
      this.stopped = { reason: this.#failed.message, since: new Date().toISOString() };
      this.#log.error({ err: String(err) }, 'journal flush failed: ingest stopped until restart');
      throw this.#failed;
    }
  }

  /** COMMITs of a group that failed become VOID (same length, so the log stays readable). */
  async #void(written: Written[]): Promise<void> {
    try {
      for (const w of written) {
        const header = encodeRecordHeader(RecordType.VOID, w.seq, w.stream, [w.payload]);
        this.#io.writeSync(w.slot.fd, header, w.pos);
        this.#dirty.add(w.slot);
      }
      if (written.length > 0 && !this.#failed) await this.#syncDirty();
    } catch (err) {
      this.#log.error({ err: String(err) }, 'journal: could not void a failed group');
    }
  }

  /** END here, continue in a free slot with the next seq. */
  #rollover(): void {
    const cur = this.#current();
    const slot = this.#pool.free(this.#minLiveSeq(), cur) ?? this.#pool.createSync();
    this.#io.writeSync(cur.fd, encodeRecordHeader(RecordType.END, cur.seq!, 0, []), this.#pos);
    this.#dirty.add(cur);
    this.#pool.claim(slot, cur.seq! + 1);
    this.#cur = slot;
    this.#pos = SEGMENT_HEADER_SIZE;
    this.#dirty.add(slot);
    const live = slot.seq! - this.#minLiveSeq() + 1;
    if (live * 2 > this.#keep) void this.checkpoint().catch(() => {});
  }

  /** Keep one free slot ready, so a rollover rarely has to make one. */
  #spare(): void {
    if (!this.#pool.creating && !this.#pool.free(this.#minLiveSeq(), this.#cur)) {
      this.#pool.create().catch((err: unknown) => this.#log.warn({ err: String(err) }, 'journal: could not preallocate a segment'));
    }
  }

  async #waitForSlot(): Promise<void> {
    this.#rolling ??= (async () => {
      // A finished large instance may have been holding the checkpoint back: move it first.
      await this.checkpoint().catch(() => {});
      if (!this.#pool.free(this.#minLiveSeq(), this.#cur)) await this.#pool.create();
    })().finally(() => (this.#rolling = undefined));
    await this.#rolling;
  }

  async #checkpoint(): Promise<void> {
    const size = this.#pool.segmentSize;
    const cur = this.#current();
    let cp = cur.seq! * size + this.#pos;
    for (const s of this.#open) if (s.id !== undefined && s.id < cp) cp = s.id;
    const held = this.holdBack();
    if (held !== undefined && held < cp) cp = held;
    if (cp <= this.#cp) return;
    this.#committedSinceCheckpoint = false;
    await this.beforeCheckpoint(cp);
    await this.#io.writeCheckpoint(this.#file, encodeCheckpoint(cp));
    // A stream that failed may still have writes in flight into the segments about to be freed: they
    // must land before a slot is reused (its new records) or closed (a reused descriptor would take them).
    await Promise.allSettled([...this.#inflight]);
    this.#cp = cp;
    // Slots wholly before the checkpoint hold nothing replay or a pending group needs (every stream a
    // group has not synced is open, and cp is at or before it): no fdatasync is owed them, so they can
    // go (an abandoned large stream's segments, written but never synced).
    for (const slot of this.#dirty) if (slot !== this.#cur && slot.seq !== undefined && slot.seq < this.#minLiveSeq()) this.#dirty.delete(slot);
    await this.#pool.trim(this.#minLiveSeq(), this.#cur, this.#dirty);
  }

  #minLiveSeq(): number {
    return Math.floor(this.#cp / this.#pool.segmentSize);
  }

  #current(): Slot {
    if (!this.#cur) throw new Error('journal: replay() must run before appending');
    return this.#cur;
  }

  #track(p: Promise<void>): Promise<void> {
    const tracked = p.catch((err: unknown) => {
      // A hole in the log would hide every later record from replay: stop until a restart.
      this.#failed ??= Object.assign(new Error(`journal write failed: ${(err as Error).message}`), { code: (err as { code?: string }).code ?? 'EIO' });
      throw this.#failed;
    });
    this.#inflight.add(tracked);
    const done = () => this.#inflight.delete(tracked);
    tracked.then(done, done);
    return tracked;
  }
}

function readCheckpoint(file: string): number | undefined {
  try {
    return decodeCheckpoint(fs.readFileSync(file));
  } catch {
    return undefined;
  }
}
