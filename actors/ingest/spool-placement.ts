// Where an instance lands: its row (and a duplicate's fresh file name), the journal commit of the row
// with the caller's writes, the Part-10 file (renamed into place before the commit, or handed to the
// deferred writer after it), and what a replaced copy leaves behind. Under a per-SOP-UID lock, so two
// copies of one instance never interleave. The Spool owns the databases; this is its write path.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { serialize } from 'node:v8';
import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import type { DeferredFiles } from './deferred-files.ts';
import { DuplicateBursts } from './duplicate-bursts.ts';
import type { FileSyncs } from './file-syncs.ts';
import type { Journal, JournalStream } from './journal.ts';
import type { RedoCapture } from './redo-capture.ts';
import { SpoolError, toSpoolError, uidFileName } from './spool-fs.ts';
import type { SpoolFsOps } from './spool-fs.ts';
import type { CommitPayload } from './spool-replay.ts';
import type { CommitInput, InstanceRecord } from './spool.ts';

export type PlacementDeps = {
  dir: string;
  fsync: boolean;
  ops: SpoolFsOps;
  log: Logger;
  /** Absent when the spool is opened without ingest (nothing is placed then). */
  journal: Journal | undefined;
  redo: RedoCapture;
  instances: Database<InstanceRecord, string>;
  byStudy: Database<string, string>;
  byPatient: Database<string, string>;
  fileSyncs: FileSyncs;
  deferred: DeferredFiles;
  replacedHooks: ReadonlySet<(previous: InstanceRecord, record: InstanceRecord) => void>;
};

/** The by-patient index's keys of a Patient ID: each value, trimmed (as Q/R single-value matching compares them). */
export const patientIndexKeys = (patientId: string | undefined): string[] =>
  patientId ? [...new Set(patientId.split('\\').map((v) => v.trim()).filter((v) => v !== ''))] : [];

const DIR_MEMO_LIMIT = 10_000;
/** Below this much free space an EIO from the index is taken for a full disk. */
const NEARLY_FULL_BYTES = 1024 * 1024;

export class Placement {
  #d: PlacementDeps;
  #dirs = new Map<string, Promise<void>>();
  #sopLocks = new Map<string, Promise<void>>();

  /** The log lines of duplicates: the first of a burst at warn, the rest at info. */
  readonly bursts: DuplicateBursts;

  constructor(deps: PlacementDeps) {
    this.#d = deps;
    this.bursts = new DuplicateBursts(deps.log);
  }

  /**
   * The durable placement of a streamed instance, under a per-SOP-UID lock so two copies of one instance
   * never interleave. The temp file is renamed into place (no fsync: the journal holds the bytes), then
   * the journal commits the row and the caller's writes (one group flush, then the LMDB transaction).
   */
  place(
    tempPath: string, size: number, input: CommitInput & { sha256?: string }, stream: JournalStream, extra?: (record: InstanceRecord) => void,
  ): Promise<InstanceRecord> {
    return this.withSopLock(input.sopInstanceUid, async () => {
      const { record, previous } = this.#recordFor(input, size);
      const finalPath = path.join(this.#d.dir, record.path);
      await this.#renameIntoPlace(tempPath, finalPath, path.dirname(record.path));
      let lsn: number;
      try {
        lsn = await this.#commit(stream, record, previous, extra);
      } catch (err) {
        await this.unlinkQuietly(finalPath); // not indexed: the file must go
        throw err;
      }
      if (this.#d.fsync) this.#d.fileSyncs.add(lsn, record.path, record.size); // synced by the next checkpoint
      await this.#replaced(record, previous);
      return record;
    });
  }

  /**
   * The placement of an instance held in memory: its bytes go to the journal with its COMMIT (one write,
   * one shared flush), and its file is written after the acknowledgement (DeferredFiles). Takes over the
   * reservation of `size` bytes.
   */
  placeHeld(
    chunks: Uint8Array[], size: number, input: CommitInput & { sha256?: string }, stream: JournalStream, extra?: (record: InstanceRecord) => void,
  ): Promise<InstanceRecord> {
    return this.withSopLock(input.sopInstanceUid, async () => {
      const { record, previous } = this.#recordFor(input, size);
      let lsn: number;
      try {
        lsn = await this.#commit(stream, record, previous, extra, chunks);
      } catch (err) {
        this.#d.deferred.release(size);
        throw err;
      }
      this.#d.deferred.add(lsn, record.path, chunks, size, stream.id ?? lsn);
      await this.#replaced(record, previous);
      return record;
    });
  }

  /**
   * The row for an instance about to be committed. A duplicate whose canonical name is taken by the
   * indexed copy gets a fresh name: the old file stays intact until the new row is committed, so a crash
   * never leaves a row describing the wrong bytes.
   */
  #recordFor(input: CommitInput & { sha256?: string }, size: number): { record: InstanceRecord; previous: InstanceRecord | undefined } {
    const uid = input.sopInstanceUid;
    const previous = this.#d.instances.get(uid);
    const dirRel = path.join('instances', uidFileName(input.studyInstanceUid), uidFileName(input.seriesInstanceUid));
    const base = uidFileName(uid);
    let fileRel = path.join(dirRel, `${base}.dcm`);
    if (previous?.path === fileRel) fileRel = path.join(dirRel, `${base}~${Date.now().toString(36)}${randomBytes(3).toString('hex')}.dcm`);
    const { sha256, ...rest } = input;
    const record: InstanceRecord = { ...rest, ...(sha256 !== undefined ? { sha256 } : {}), path: fileRel, size };
    if (previous) {
      record.duplicateOf = {
        receivedAt: previous.receivedAt,
        size: previous.size,
        callingAeTitle: previous.callingAeTitle,
        remoteAddress: previous.remoteAddress,
        path: previous.path,
        ...(previous.sha256 !== undefined ? { sha256: previous.sha256 } : {}),
      };
    }
    return { record, previous };
  }

  /** After a duplicate's row is committed: the file it replaced goes, and the log says so. */
  async #replaced(record: InstanceRecord, previous: InstanceRecord | undefined): Promise<void> {
    if (!previous) return;
    if (previous.path !== record.path) {
      await this.#d.deferred.forget(previous.path); // held and not written yet: it never will be
      await this.unlinkQuietly(path.join(this.#d.dir, previous.path));
    }
    // Level 2 storage keeps the latest copy (PS3.4 B.4.1); whether peers get it again is their `duplicates` policy.
    const identical = previous.sha256 === undefined || record.sha256 === undefined ? undefined : previous.sha256 === record.sha256;
    this.bursts.overwritten({ sopInstanceUid: record.sopInstanceUid, path: record.path, identical, previous: record.duplicateOf });
  }

  /**
   * The row, the study index and the caller's extra writes, captured as the COMMIT record's redo list and
   * applied in the group's LMDB transaction: all or nothing. What `extra` throws is rethrown as it is.
   */
  async #commit(
    stream: JournalStream, record: InstanceRecord, previous: InstanceRecord | undefined, extra?: (record: InstanceRecord) => void, data?: Uint8Array[],
  ): Promise<number> {
    let extraError: { error: unknown } | undefined;
    try {
      return await this.#d.journal!.commit(stream, () => {
        const ops = this.#d.redo.capture(() => {
          this.#d.instances.put(record.sopInstanceUid, record);
          if (previous && previous.studyInstanceUid !== record.studyInstanceUid) {
            this.#d.byStudy.remove(previous.studyInstanceUid, record.sopInstanceUid);
          }
          this.#d.byStudy.put(record.studyInstanceUid, record.sopInstanceUid);
          if (previous && previous.patientId !== record.patientId) for (const k of patientIndexKeys(previous.patientId)) this.#d.byPatient.remove(k, record.sopInstanceUid);
          for (const k of patientIndexKeys(record.patientId)) this.#d.byPatient.put(k, record.sopInstanceUid);
          try {
            if (previous) for (const hook of this.#d.replacedHooks) hook(previous, record);
            extra?.(record);
          } catch (error) {
            extraError = { error };
            throw error;
          }
        });
        return { payload: serialize({ record, ops } satisfies CommitPayload), apply: () => this.#d.redo.apply(ops) };
      }, data);
    } catch (err) {
      if (extraError) throw extraError.error;
      const failure = toSpoolError(err, 'journal commit');
      // LMDB turns a short write on a full disk into EIO: call that what it is.
      if (failure.code === 'IO_ERROR' && (await this.#nearlyFull())) {
        throw new SpoolError('DISK_FULL', `${failure.message} (file system full)`, { cause: err, errno: failure.errno });
      }
      throw failure;
    }
  }

  async #nearlyFull(): Promise<boolean> {
    try {
      const st = await fsp.statfs(this.#d.dir);
      return st.bavail * st.bsize < NEARLY_FULL_BYTES;
    } catch {
      return false;
    }
  }

  async #renameIntoPlace(tempPath: string, finalPath: string, dirRel: string): Promise<void> {
    await this.ensureDir(dirRel);
    try {
      await this.#d.ops.rename(tempPath, finalPath);
    } catch (err) {
      // The directory may have been removed behind our back (retention, an operator): make it again, once.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toSpoolError(err, 'rename');
      this.#dirs.delete(dirRel);
      await this.ensureDir(dirRel);
      await this.#step('rename', () => this.#d.ops.rename(tempPath, finalPath));
    }
  }

  /** mkdir -p <study>/<series>, once per directory per process. */
  ensureDir(dirRel: string): Promise<void> {
    let made = this.#dirs.get(dirRel);
    if (!made) {
      if (this.#dirs.size >= DIR_MEMO_LIMIT) this.#dirs.clear();
      const abs = path.join(this.#d.dir, dirRel);
      // No directory fsync here: the checkpoint syncs the directories of the files it covers.
      made = this.#d.ops.mkdir(abs);
      const mine = made;
      this.#dirs.set(dirRel, mine);
      mine.catch(() => {
        if (this.#dirs.get(dirRel) === mine) this.#dirs.delete(dirRel);
      });
    }
    return made.catch((err: unknown) => {
      throw toSpoolError(err, 'mkdir');
    });
  }

  async withSopLock<T>(uid: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#sopLocks.get(uid);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    this.#sopLocks.set(uid, mine);
    try {
      if (before) await before;
      return await fn();
    } finally {
      release();
      if (this.#sopLocks.get(uid) === mine) this.#sopLocks.delete(uid);
    }
  }

  async #step<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toSpoolError(err, step);
    }
  }

  async unlinkQuietly(file: string): Promise<void> {
    try {
      await this.#d.ops.unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#d.log.warn({ file, err: String(err) }, 'could not remove spool file');
    }
  }
}
