// The spool's contact with the file system: its error type, the few fs operations it uses (injectable,
// so tests can fail any step), and how UIDs become safe file names.
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export type SpoolErrorCode = 'DISK_FULL' | 'IO_ERROR' | 'CLOSED' | 'DISCARDED';

export class SpoolError extends Error {
  readonly code: SpoolErrorCode;
  /** The underlying errno code (ENOSPC, EIO …) when there is one. */
  readonly errno: string | undefined;

  constructor(code: SpoolErrorCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpoolError';
    this.code = code;
    this.errno = options?.errno;
  }
}

const DISK_FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);

/** Map any error from a spool step to a SpoolError; ENOSPC and EDQUOT (also as LMDB reports them) are DISK_FULL. */
export function toSpoolError(err: unknown, step: string): SpoolError {
  if (err instanceof SpoolError) return err;
  const e = err as { code?: unknown; message?: string } | undefined;
  // lmdb-js gives the errno as a number (28), node:fs as a name ('ENOSPC').
  const errno = typeof e?.code === 'string' ? e.code : typeof e?.code === 'number' ? errnoName(e.code) : undefined;
  const message = e?.message ?? String(err);
  const diskFull =
    (errno !== undefined && DISK_FULL_ERRNOS.has(errno)) || /No space left on device|Disk quota exceeded|MDB_MAP_FULL/i.test(message);
  return new SpoolError(diskFull ? 'DISK_FULL' : 'IO_ERROR', `spool ${step}: ${message}`, { cause: err, errno });
}

function errnoName(code: number): string | undefined {
  for (const [name, value] of Object.entries(constants.errno)) if (value === code) return name;
  return undefined;
}

/** The file-system calls the spool makes. Tests may replace any of them to inject failures. */
export type SpoolFsOps = {
  open(path: string, flags: string, mode?: number): Promise<FileHandle>;
  /** One positioned writev; may write fewer bytes than given (the caller loops). */
  writev(fh: FileHandle, chunks: Uint8Array[], position: number): Promise<number>;
  /** fsync a file. */
  sync(fh: FileHandle): Promise<void>;
  /** fsync a directory, so the entries created or renamed in it are durable. */
  syncDir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
};

export const realFsOps: SpoolFsOps = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  writev: async (fh, chunks, position) => (await fh.writev(chunks, position)).bytesWritten,
  sync: (fh) => fh.sync(),
  syncDir: async (dir) => {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
};

/** Linux caps one writev at IOV_MAX (1024) buffers. */
const IOV_MAX = 1024;

/** Write all of `chunks` at `position`, looping over short writes (a nearly full disk writes part, then fails). */
export async function writeFully(ops: SpoolFsOps, fh: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let pending = chunks;
  let pos = position;
  while (pending.length > 0) {
    const batch = pending.length > IOV_MAX ? pending.slice(0, IOV_MAX) : pending;
    const want = batch.reduce((n, c) => n + c.byteLength, 0);
    const wrote = await ops.writev(fh, batch, pos);
    if (wrote <= 0 && want > 0) throw Object.assign(new Error('writev wrote nothing'), { code: 'EIO' });
    pos += wrote;
    pending = dropBytes(pending, wrote);
  }
}

/** The chunks that remain after the first `n` bytes, as views (no copy). */
function dropBytes(chunks: Uint8Array[], n: number): Uint8Array[] {
  let i = 0;
  let left = n;
  while (i < chunks.length && left >= chunks[i].byteLength) {
    left -= chunks[i].byteLength;
    i++;
  }
  if (i >= chunks.length) return [];
  const rest = chunks.slice(i);
  if (left > 0) rest[0] = rest[0].subarray(left);
  return rest;
}

/**
 * A UID as a file or directory name. Conforming UIDs (digits and dots, PS3.5 9.1) are used as they are;
 * anything else (a sender's bug, or "../x") becomes "x_<readable part>_<hash>". The "_" never occurs in
 * a conforming UID, so two different UIDs never share a name.
 */
export function uidFileName(uid: string): string {
  if (/^[0-9.]{1,64}$/.test(uid) && /[0-9]/.test(uid)) return uid;
  const readable = uid.slice(0, 40).replace(/[^0-9A-Za-z.-]/g, '-');
  const hash = createHash('sha256').update(uid, 'utf8').digest('hex').slice(0, 16);
  return `x_${readable}_${hash}`;
}

/**
 * Directory fsyncs shared between concurrent callers: a caller whose rename finished joins the next sync
 * of that directory to start (one that started earlier might not cover its entry), so N instances
 * committed together into one series cost about two directory fsyncs, not N.
 */
export class DirSyncer {
  #sync: (dir: string) => Promise<void>;
  #state = new Map<string, { running: Promise<void>; next: Promise<void> | undefined }>();

  constructor(sync: (dir: string) => Promise<void>) {
    this.#sync = sync;
  }

  sync(dir: string): Promise<void> {
    const state = this.#state.get(dir);
    if (!state) return this.#start(dir);
    state.next ??= state.running.then(
      () => this.#start(dir),
      () => this.#start(dir),
    );
    return state.next;
  }

  #start(dir: string): Promise<void> {
    const running = this.#sync(dir);
    const state = { running, next: undefined };
    this.#state.set(dir, state);
    const done = (): void => {
      if (this.#state.get(dir) === state && state.next === undefined) this.#state.delete(dir);
    };
    running.then(done, done);
    return running;
  }
}
