// The journal's segment files: fixed-size, preallocated by writing zeros (so an append never allocates
// blocks and one fdatasync flushes data only, no file-system metadata), kept as slots `seg-<n>.wal` and
// reused. A slot's identity on disk is the seq in its header, not its name: reusing a slot = writing a
// new header, which the next group flush makes durable with the records behind it.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { SEGMENT_HEADER_SIZE, decodeSegmentHeader, encodeSegmentHeader } from './journal-format.ts';

/** The journal's synchronous file operations; tests replace them to crash (SIGKILL) at a chosen step. */
export type JournalIo = {
  writeSync(fd: number, data: Uint8Array, position: number): void;
  /** A group's records in one positioned writev: its instances' bytes are not copied into one buffer first. */
  writevSync(fd: number, chunks: readonly Uint8Array[], position: number): void;
  /** The one durable barrier of a group commit (on the thread pool). */
  datasync(fd: number): Promise<void>;
  /** Replace the checkpoint file durably (temp, fsync, rename, directory fsync). */
  writeCheckpoint(file: string, data: Uint8Array): Promise<void>;
};

export const realJournalIo: JournalIo = {
  writeSync: (fd, data, position) => {
    let done = 0;
    while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done, position + done);
  },
  writevSync: (fd, chunks, position) => {
    let pending = chunks;
    let pos = position;
    while (pending.length > 0) {
      const wrote = fs.writevSync(fd, pending.slice(0, IOV_MAX), pos);
      if (wrote <= 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
      pos += wrote;
      pending = split(pending, wrote)[1];
    }
  },
  datasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  writeCheckpoint: async (file, data) => {
    const tmp = `${file}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    await syncDir(path.dirname(file));
  },
};

export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export type Slot = { file: string; fd: number; seq: number | undefined };

const ZEROS = Buffer.alloc(1024 * 1024);

export class SegmentPool {
  readonly dir: string;
  readonly segmentSize: number;
  readonly slots: Slot[] = [];
  #keep: number;
  #io: JournalIo;
  #log: Logger;
  #creating: Promise<Slot> | undefined;
  #next = 0;

  private constructor(dir: string, segmentSize: number, keep: number, io: JournalIo, log: Logger) {
    this.dir = dir;
    this.segmentSize = segmentSize;
    this.#keep = keep;
    this.#io = io;
    this.#log = log;
  }

  /** The slots already on disk (their size wins over `segmentSize`: it was chosen when they were made). */
  static async open(dir: string, segmentSize: number, keep: number, io: JournalIo, log: Logger): Promise<SegmentPool> {
    await fsp.mkdir(dir, { recursive: true });
    const names = (await fsp.readdir(dir)).filter((n) => /^seg-\d+\.wal$/.test(n)).sort((a, b) => slotNumber(a) - slotNumber(b));
    let size = segmentSize;
    if (names.length > 0) size = (await fsp.stat(path.join(dir, names[0]))).size;
    const pool = new SegmentPool(dir, size, keep, io, log);
    for (const name of names) {
      const file = path.join(dir, name);
      if ((await fsp.stat(file)).size !== size) {
        // A slot whose zero-fill never finished (killed while creating it): make it again.
        await fsp.rm(file, { force: true });
        continue;
      }
      const fd = fs.openSync(file, 'r+');
      const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
      fs.readSync(fd, head, 0, SEGMENT_HEADER_SIZE, 0);
      const h = decodeSegmentHeader(head);
      pool.slots.push({ file, fd, seq: h && h.segmentSize === size ? h.seq : undefined });
    }
    return pool;
  }

  bySeq(seq: number): Slot | undefined {
    return this.slots.find((s) => s.seq === seq);
  }

  /** A slot not holding any live segment (seq below `minLive`, or none), or undefined. */
  free(minLive: number, current: Slot | undefined): Slot | undefined {
    return this.slots.find((s) => s !== current && (s.seq === undefined || s.seq < minLive));
  }

  /** Give `slot` the identity `seq`: its header is written now and made durable by the next flush. */
  claim(slot: Slot, seq: number): void {
    this.#io.writeSync(slot.fd, encodeSegmentHeader({ seq, segmentSize: this.segmentSize }), 0);
    slot.seq = seq;
  }

  /** More slots than the pool's usual size (a large instance, a slow checkpoint): a checkpoint trims them. */
  get grown(): boolean {
    return this.slots.length > this.#keep;
  }

  get creating(): boolean {
    return this.#creating !== undefined;
  }

  /** A new zero-filled slot, durable (file and directory entry), made in the background. */
  create(): Promise<Slot> {
    this.#creating ??= this.#create().finally(() => (this.#creating = undefined));
    return this.#creating;
  }

  /** The same, blocking: only when a commit must roll over and no slot is ready (the journal outgrew its pool). */
  createSync(): Slot {
    const file = path.join(this.dir, `seg-${this.#nextNumber()}.wal`);
    const fd = fs.openSync(file, 'wx+');
    try {
      for (let at = 0; at < this.segmentSize; at += ZEROS.length) fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, this.segmentSize - at), at);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw err;
    }
    const dfd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
    const slot: Slot = { file, fd, seq: undefined };
    this.slots.push(slot);
    return slot;
  }

  async #create(): Promise<Slot> {
    const file = path.join(this.dir, `seg-${this.#nextNumber()}.wal`);
    const fh = await fsp.open(file, 'wx+');
    try {
      for (let at = 0; at < this.segmentSize; at += ZEROS.length) await fh.write(ZEROS, 0, Math.min(ZEROS.length, this.segmentSize - at), at);
      await fh.sync();
    } catch (err) {
      await fsp.rm(file, { force: true }); // a disk too full for another segment: give the space back
      throw err;
    } finally {
      await fh.close();
    }
    await syncDir(this.dir);
    const slot: Slot = { file, fd: fs.openSync(file, 'r+'), seq: undefined };
    this.slots.push(slot);
    this.#log.debug({ file, slots: this.slots.length }, 'journal segment preallocated');
    return slot;
  }

  /** Delete free slots beyond the pool's usual size (it grew for a large instance or a slow checkpoint); not those in `busy`. */
  async trim(minLive: number, current: Slot | undefined, busy: ReadonlySet<Slot>): Promise<void> {
    while (this.slots.length > this.#keep) {
      const slot = this.slots.find((s) => s !== current && !busy.has(s) && (s.seq === undefined || s.seq < minLive));
      if (!slot) return;
      this.slots.splice(this.slots.indexOf(slot), 1);
      fs.closeSync(slot.fd);
      await fsp.rm(slot.file, { force: true });
    }
  }

  close(): void {
    for (const s of this.slots) fs.closeSync(s.fd);
    this.slots.length = 0;
  }

  /** A slot number never handed out before in this process (a background creation may be under way). */
  #nextNumber(): number {
    this.#next = Math.max(this.#next, this.slots.reduce((n, s) => Math.max(n, slotNumber(path.basename(s.file)) + 1), 0));
    return this.#next++;
  }
}

function slotNumber(name: string): number {
  return Number(/^seg-(\d+)\.wal$/.exec(name)?.[1] ?? -1);
}

const IOV_MAX = 1024;

/** The first `n` bytes of `chunks` and the rest, as views (no copy). */
export function split(chunks: readonly Uint8Array[], n: number): [Uint8Array[], Uint8Array[]] {
  const head: Uint8Array[] = [];
  let left = n;
  let i = 0;
  for (; i < chunks.length && left > 0; i++) {
    const c = chunks[i];
    if (c.byteLength <= left) {
      head.push(c);
      left -= c.byteLength;
    } else {
      head.push(c.subarray(0, left));
      return [head, [c.subarray(left), ...chunks.slice(i + 1)]];
    }
  }
  return [head, chunks.slice(i)];
}

/** Positioned writev of all of `chunks`, looping over short writes. */
export async function writeAll(fd: number, chunks: Uint8Array[], position: number): Promise<void> {
  let pending = chunks;
  let pos = position;
  while (pending.length > 0) {
    const batch = pending.slice(0, IOV_MAX);
    const wrote = await new Promise<number>((resolve, reject) => fs.writev(fd, batch, pos, (err, n) => (err ? reject(err) : resolve(n))));
    if (wrote <= 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
    pos += wrote;
    pending = split(pending, wrote)[1];
  }
}
