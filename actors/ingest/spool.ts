// The durable spool: Part-10 files under <dir>/instances/<study>/<series>/<sop>.dcm, an LMDB index
// (<dir>/index) and the write-ahead journal (<dir>/journal) that makes both durable. Design property 1:
// commit() resolves — and the C-STORE-RSP Success may be sent — only after the instance's bytes and its
// index row with whatever the caller's `extra` writes (outbound queue entries, completion membership, a
// prefetch plan) are in the journal behind ONE fdatasync, shared by every commit of the same group, on
// any association (actors/ingest/journal.ts). The LMDB transaction runs right after that flush, in the
// same synchronous section, without a sync of its own; its writes are captured as a redo list in the
// COMMIT record (actors/ingest/redo-capture.ts), so the index can always be brought up to date from the
// journal (actors/ingest/spool-replay.ts, at open, before anything is served).
//
// The Part-10 file: an instance held in memory (up to `memoryLimit`, within `memoryBudget`: most
// instances) goes to the journal in its COMMIT's group write and its file is written right after the
// acknowledgement (actors/ingest/deferred-files.ts; readers wait with whenWritten). A larger one is
// written beside the journal as its bytes arrive (a temp file under incoming/, renamed into place before
// the commit's flush, with no fsync). The line is 128 KiB: larger instances held cost more than they
// save (CT 512 KB: 137–139 inst/s held, 177–179 streamed, peak RSS 170 vs 147 MB; the bytes reach the
// disk while the rest arrives, so the commit's fdatasync has less left to flush, and no 512 KB copies
// churn the heap). A checkpoint (every segment or 10 s) waits for the deferred files,
// fsyncs the files and their directories, waits for LMDB's own flush, and only then lets the journal
// reuse the segments that held them. After a crash, replay writes every instance committed since the
// last checkpoint again from the journal.
//
// LMDB is opened with noSync and synced (mdb_env_sync) only at checkpoints. Measured here: a
// transactionSync costs 0.02 ms that way, 0.4–1.1 ms with overlappingSync (its commit waits for the
// previous flush): a second barrier per acknowledgement. Every journaled LMDB transaction commits after
// its journal flush, so the index never holds a decision the journal does not; the 'applied' LSN it
// carries tells replay where to resume. A process crash (SIGKILL) loses nothing of LMDB (the page cache
// survives it); a power loss rolls the index back to at most its last checkpoint, and replay redoes the
// rest. Writes outside the journal (deliveries, retries, retention) are durable at the next checkpoint
// (≤ 10 s): after a power loss a delivery may be sent again, never lost. `fsync: false` (tests,
// benchmarks) also skips the journal's fdatasync and the checkpoint's syncs.
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { open as openLmdb } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { IncomingInstance } from './spool-incoming.ts';
import type { IncomingHost } from './spool-incoming.ts';
import { SpoolError, realFsOps } from './spool-fs.ts';
import type { SpoolFsOps } from './spool-fs.ts';
import { findOrphans as scanOrphans, removeLeftovers, verifyIndex } from './spool-startup.ts';
import type { SpoolStartupReport } from './spool-startup.ts';
import { FileSyncs } from './file-syncs.ts';
import { DeferredFiles } from './deferred-files.ts';
import { Placement, patientIndexKeys } from './spool-placement.ts';
import { claimJournal } from './journal-owner.ts';
import { Journal } from './journal.ts';
import type { JournalIo } from './journal.ts';
import { RedoCapture } from './redo-capture.ts';
import { bindIndexToJournal, syncIndex } from './index-binding.ts';
import { replaySpool } from './spool-replay.ts';
import type { SpoolReplayReport } from './spool-replay.ts';

export { IncomingInstance } from './spool-incoming.ts';
export type { IncomingState } from './spool-incoming.ts';
export { SpoolError } from './spool-fs.ts';
export type { SpoolErrorCode, SpoolFsOps } from './spool-fs.ts';
export type { SpoolStartupReport } from './spool-startup.ts';

/** The instance this one replaced (same SOP Instance UID, overwritten: Level 2 storage, PS3.4 B.4.1). */
export type DuplicateInfo = { receivedAt: string; size: number; callingAeTitle: string; remoteAddress: string; path: string; sha256?: string };

export type InstanceRecord = {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  patientId: string;
  /** Issuer of Patient ID (0010,0021): with Patient ID, the patient's identity. Absent on older rows. */
  issuerOfPatientId?: string;
  patientName?: string;
  modality?: string;
  accessionNumber?: string;
  studyDate?: string;
  transferSyntaxUid: string;
  /** File size in bytes, Part-10 header included. */
  size: number;
  /** Relative to the spool directory. */
  path: string;
  callingAeTitle: string;
  calledAeTitle: string;
  listener: string;
  remoteAddress: string;
  /** ISO 8601. */
  receivedAt: string;
  /** SHA-256 (hex) of the dataset bytes as stored, Part-10 header excluded: duplicate detection (issue 8).
   *  Absent on rows written before it was recorded. */
  sha256?: string;
  duplicateOf?: DuplicateInfo;
};

export type CommitInput = Omit<InstanceRecord, 'path' | 'size' | 'duplicateOf' | 'sha256'>;

/** The journal's shape (tests make it small) and its file operations (tests crash it at chosen steps). */
export type SpoolJournalOptions = { segmentSize?: number; segments?: number; io?: Partial<JournalIo> };

export type SpoolOptions = {
  dir: string;
  /** fsync files, directories and the index (default true). Only tests and benchmarks turn it off. */
  fsync?: boolean;
  logger?: Logger;
  /** Bytes buffered per instance before write() asks the producer to pause (default 1 MiB). */
  highWaterMark?: number;
  /** An instance up to this size is held in memory until it is committed, its file written after (default 128 KiB; 0: always stream). */
  memoryLimit?: number;
  /** Bytes held in memory over all instances, received or waiting for their file (default 64 MiB). */
  memoryBudget?: number;
  /** Stat every indexed file at open (default true). */
  verify?: boolean;
  /** Replace file-system calls (tests inject failures). */
  fsOps?: Partial<SpoolFsOps>;
  journal?: SpoolJournalOptions;
  /** SHA-256 every dataset as it streams (default true): only a peer's `duplicates: if-changed` needs it. */
  hashDatasets?: boolean;
  /**
   * Own the journal (default true): replay it at open, store instances. One process only (the router);
   * another (the CLI beside a running router) opens with false: the index only, begin() refuses.
   */
  ingest?: boolean;
};


/** Marks the by-patient index as built (a key no Patient ID can be: LO has no control characters). */
const BY_PATIENT_BUILT = '\u0000built';

export class Spool {
  /** The LMDB environment: later work opens more sub-databases (queues) here and writes them in `extra`. */
  readonly db: RootDatabase;
  readonly dir: string;
  readonly fsync: boolean;
  readonly startup: SpoolStartupReport;
  /** What replay found at open. */
  replayed: SpoolReplayReport | undefined;
  /** SHA-256 each dataset as it arrives; the router turns it off when no peer's duplicates policy needs it. */
  hashDatasets: boolean;
  #journal: Journal | undefined;
  #release: (() => void) | undefined;
  #redo: RedoCapture;
  #meta: Database<number, string>;
  #fileSyncs: FileSyncs;
  #deferred: DeferredFiles;
  #placement: Placement;
  #instances: Database<InstanceRecord, string>;
  #byStudy: Database<string, string>;
  /** Patient ID → SOP Instance UIDs (Q/R's single-value PatientID); rebuilt at open when missing. */
  #byPatient: Database<string, string>;
  #log: Logger;
  #host: IncomingHost | undefined;
  #live = new Set<IncomingInstance>();
  #replacedHooks = new Set<(previous: InstanceRecord, record: InstanceRecord) => void>();
  #removedHooks = new Set<(sopInstanceUid: string) => void>();
  #seq = 0;
  #closed = false;
  /** db.close() has been called. lmdb-js 3.5: a read while it closes re-arms its read-txn reset timer on the
   *  closed txn, which then throws "Attempt to reset an invalid read txn" from the timer, uncaught. */
  #indexClosed = false;
  #closing: Promise<void> | undefined;

  private constructor(opts: {
    dir: string; fsync: boolean; db: RootDatabase; ops: SpoolFsOps; log: Logger; highWaterMark: number; startup: SpoolStartupReport;
    journal: Journal | undefined; hashDatasets: boolean; memoryLimit: number; memoryBudget: number;
  }) {
    this.dir = opts.dir;
    this.fsync = opts.fsync;
    this.db = opts.db;
    this.startup = opts.startup;
    this.hashDatasets = opts.hashDatasets;
    this.#log = opts.log;
    this.#journal = opts.journal;
    this.#fileSyncs = new FileSyncs(opts.dir);
    this.#deferred = new DeferredFiles({
      dir: opts.dir, ops: opts.ops, logger: opts.log, budget: opts.memoryBudget,
      ensureDir: (dirRel) => this.#placement.ensureDir(dirRel),
      written: (lsn, file, size) => this.fsync && this.#fileSyncs.add(lsn, file, size),
      failed: () => void this.#journal?.checkpoint().catch(() => {}),
    });
    // Before any sub-database opens: every one reports its writes while a commit is captured.
    this.#redo = new RedoCapture(opts.db);
    this.#meta = opts.db.openDB<number, string>({ name: 'journal-meta' });
    this.#instances = opts.db.openDB<InstanceRecord, string>({ name: 'instances' });
    this.#byStudy = opts.db.openDB<string, string>({ name: 'instances-by-study', dupSort: true, encoding: 'ordered-binary' });
    this.#byPatient = opts.db.openDB<string, string>({ name: 'instances-by-patient', dupSort: true, encoding: 'ordered-binary' });
    this.#placement = new Placement({
      dir: opts.dir, fsync: opts.fsync, ops: opts.ops, log: opts.log, journal: opts.journal, redo: this.#redo, instances: this.#instances,
      byStudy: this.#byStudy, byPatient: this.#byPatient, fileSyncs: this.#fileSyncs, deferred: this.#deferred, replacedHooks: this.#replacedHooks,
    });
    if (!opts.journal) return; // the index only (ingest: false)
    this.#host = {
      ops: opts.ops,
      fsync: opts.fsync,
      highWaterMark: opts.highWaterMark,
      logger: opts.log,
      journal: opts.journal,
      hash: () => this.hashDatasets,
      isClosed: () => this.#closed,
      place: (tempPath, size, input, stream, extra) => this.#placement.place(tempPath, size, input, stream, extra),
      memoryLimit: opts.memoryLimit,
      reserve: (n) => this.#deferred.reserve(n),
      release: (n) => this.#deferred.release(n),
      placeHeld: (chunks, size, input, stream, extra) => this.#placement.placeHeld(chunks, size, input, stream, extra),
    };
    bindIndexToJournal(opts.journal, opts.db, this.#meta, () => (this.fsync ? this.#fileSyncs : undefined), (lsn) => this.#deferred.writtenBefore(lsn));
    opts.journal.holdBack = () => this.#deferred.failingFrom();
  }

  /** Whether a spool was ever opened in `dir` (read-only commands look before they open: opening creates it). */
  static exists(dir: string): boolean {
    return existsSync(path.join(dir, 'index'));
  }

  static async open(opts: SpoolOptions): Promise<Spool> {
    const dir = path.resolve(opts.dir);
    const fsync = opts.fsync ?? true;
    const ops: SpoolFsOps = { ...realFsOps, ...opts.fsOps };
    const log = opts.logger ?? pino({ enabled: false });
    for (const sub of ['incoming', 'instances', 'index']) await fsp.mkdir(path.join(dir, sub), { recursive: true });
    const ingest = opts.ingest ?? true;
    if (fsync && ingest) await ops.syncDir(dir);
    // Only the journal's owner may clear incoming/: the temp files there are its instances arriving.
    const release = ingest ? claimJournal(path.join(dir, 'journal')) : undefined;
    try {
      return await Spool.#openClaimed(opts, { dir, fsync, ops, log, ingest, release });
    } catch (err) {
      release?.(); // a failed open must not leave the journal looking owned
      throw err;
    }
  }

  static async #openClaimed(
    opts: SpoolOptions, c: { dir: string; fsync: boolean; ops: SpoolFsOps; log: Logger; ingest: boolean; release: (() => void) | undefined },
  ): Promise<Spool> {
    const { dir, fsync, ops, log, ingest, release } = c;
    const tempFilesRemoved = ingest ? await removeLeftovers(path.join(dir, 'incoming'), log) : 0;
    const db = openLmdb({
      path: path.join(dir, 'index'),
      compression: false,
      overlappingSync: false,
      eventTurnBatching: false,
      noSync: true,
      maxDbs: 64,
    });
    const journal = ingest ? await Journal.open({ dir: path.join(dir, 'journal'), fsync, logger: log, ...opts.journal }) : undefined;
    const startup: SpoolStartupReport = { tempFilesRemoved, checked: 0, missing: 0, sizeMismatch: 0, problems: [] };
    const spool = new Spool({
      dir, fsync, db, ops, log, highWaterMark: opts.highWaterMark ?? 1024 * 1024, startup, journal, hashDatasets: opts.hashDatasets ?? true,
      memoryLimit: opts.memoryLimit ?? 128 * 1024, memoryBudget: opts.memoryBudget ?? 64 * 1024 * 1024,
    });
    spool.#release = release;
    if (journal) {
      spool.replayed = await replaySpool(journal, {
        dir, db, meta: spool.#meta, instances: spool.#instances, redo: spool.#redo, log, placed: (lsn, file, size) => fsync && spool.#fileSyncs.add(lsn, file, size),
      });
      // What replay wrote is made durable now, so the next crash does not replay it again.
      if (spool.replayed.commits > 0) await journal.checkpoint();
    }
    if (opts.verify ?? true) await verifyIndex(spool.#instances, dir, startup, log);
    if (ingest) await spool.#buildByPatient(log);
    log.info({ dir, instances: spool.count(), ...startup, problems: undefined }, 'spool open');
    return spool;
  }

  /** Start receiving one instance; `header` (Part-10 preamble and meta) is written first. */
  begin(header: Uint8Array): IncomingInstance {
    if (this.#closed) throw new SpoolError('CLOSED', 'spool is closed');
    if (!this.#journal || !this.#host) throw new SpoolError('CLOSED', 'spool opened without ingest (the journal belongs to another process)');
    // Unique within this process; the owner of the journal clears incoming/ at open.
    const name = `${process.pid}-${(++this.#seq).toString(36)}.part`;
    const incoming = new IncomingInstance(this.#host, path.join(this.dir, 'incoming', name), header, this.#journal.stream());
    this.#live.add(incoming);
    void incoming.finished.then(() => this.#live.delete(incoming));
    return incoming;
  }

  get(sopInstanceUid: string): InstanceRecord | undefined {
    this.#readable();
    return this.#instances.get(sopInstanceUid);
  }

  /**
   * Why ingest has stopped (the journal could not be flushed: every C-STORE is refused with A700 until a
   * restart replays what is durable), and since when; undefined while the spool takes instances.
   */
  get ingestStopped(): { reason: string; since: string } | undefined {
    return this.#journal?.stopped;
  }

  count(): number {
    this.#readable();
    return (this.#instances.getStats() as { entryCount: number }).entryCount;
  }

  /** Indexed instances, in SOP Instance UID order (by study or patient: in the order of its SOP UIDs). */
  list(opts: { studyInstanceUid?: string; patientId?: string; limit?: number } = {}): InstanceRecord[] {
    this.#readable();
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return [];
    if (opts.studyInstanceUid === undefined && opts.patientId === undefined) {
      return Array.from(this.#instances.getRange(Number.isFinite(limit) ? { limit } : {}), ({ value }) => value);
    }
    const out: InstanceRecord[] = [];
    const uids = opts.studyInstanceUid !== undefined ? this.#byStudy.getValues(opts.studyInstanceUid)
      : opts.patientId ? this.#byPatient.getValues(opts.patientId) : [];
    for (const uid of uids) {
      const record = this.#instances.get(uid);
      if (record) out.push(record);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Forget an instance: its row goes first (one transaction), then its file. A crash in between
   * leaves an orphan file (see findOrphans), never a row without its file. For retention only.
   */
  async remove(sopInstanceUid: string): Promise<boolean> {
    return this.#placement.withSopLock(sopInstanceUid, async () => {
      this.#readable();
      const record = this.#instances.get(sopInstanceUid);
      if (!record) return false;
      await this.#deferred.whenWritten(record.path);
      await this.db.transaction(() => {
        this.#instances.remove(sopInstanceUid);
        this.#byStudy.remove(record.studyInstanceUid, sopInstanceUid);
        for (const k of patientIndexKeys(record.patientId)) this.#byPatient.remove(k, sopInstanceUid);
      });
      // The row's removal must be on disk before the file goes: never a row without its file.
      if (this.fsync) await syncIndex(this.db);
      await this.#placement.unlinkQuietly(path.join(this.dir, record.path));
      for (const hook of this.#removedHooks) hook(sopInstanceUid);
      return true;
    });
  }

  /**
   * Run `hook` inside the index transaction of every instance that replaces an indexed one (a duplicate
   * SOP Instance UID), before the commit's `extra`: e.g. the outbound queue points its items at the new
   * file, since the replaced one is removed once the transaction commits. Returns an unsubscribe function.
   */
  onReplaced(hook: (previous: InstanceRecord, record: InstanceRecord) => void): () => void {
    this.#replacedHooks.add(hook);
    return () => this.#replacedHooks.delete(hook);
  }

  /** Run `hook` after remove() has forgotten an instance (e.g. a cluster's instance directory). Returns an unsubscribe function. */
  onRemoved(hook: (sopInstanceUid: string) => void): () => void {
    this.#removedHooks.add(hook);
    return () => this.#removedHooks.delete(hook);
  }

  /** Whether list({ patientId }) answers from the by-patient index (built at open by the journal's owner). */
  get indexesPatients(): boolean {
    return this.#byPatient.get(BY_PATIENT_BUILT) !== undefined;
  }

  /**
   * The by-patient index came after the others: a spool written before it gets it built from the
   * instance rows at open, once (its marker is written in the same transaction). Like the other indexes
   * it sits beside the durable record and can be rebuilt from it.
   */
  async #buildByPatient(log: Logger): Promise<void> {
    if (this.#byPatient.get(BY_PATIENT_BUILT) !== undefined) return;
    let n = 0;
    await this.db.transaction(() => {
      for (const { value: r } of this.#instances.getRange()) {
        for (const k of patientIndexKeys(r.patientId)) this.#byPatient.put(k, r.sopInstanceUid);
        n++;
      }
      this.#byPatient.put(BY_PATIENT_BUILT, '');
    });
    if (n > 0) log.info({ instances: n }, 'spool: by-patient index built from the instance rows');
  }

  /** Absolute path of an indexed instance's file. */
  pathOf(record: InstanceRecord): string {
    return path.join(this.dir, record.path);
  }

  /**
   * Resolves once the file at `file` (relative to the spool, as in a row) is written: an instance held in
   * memory is acknowledged before its file exists (see deferred-files.ts). Readers of a file await this.
   */
  whenWritten(file: string): Promise<void> {
    return this.#deferred.whenWritten(file);
  }

  /** The whole Part-10 file at `file` while it is held in memory, not written yet (else undefined: read the file). */
  heldFile(file: string): Uint8Array | undefined {
    return this.#deferred.heldFile(file);
  }

  /**
   * Files under instances/ that no index row points to. They are never acknowledged instances: a crash
   * between rename and index commit, or between a duplicate's commit and the removal of the file it
   * replaced. Walks the whole tree and holds every indexed path; for maintenance, not the hot path.
   */
  findOrphans(): Promise<string[]> {
    this.#readable();
    return scanOrphans(this.#instances, this.dir);
  }

  /** Discard instances still being received, wait for commits under way, close the index. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      const live = [...this.#live];
      await Promise.all(live.map((i) => (i.state === 'open' ? i.discard() : i.finished)));
      // The callers of those commits do their follow-up (e.g. the completion tracker's afterCommit reads
      // its groups) a few promise hops later: let them, before the index closes under them.
      if (live.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const times = this.#journal?.times;
      if (times && times.groups > 0) {
        const per = (ms: number) => Number(((ms / times.commits) * 1000).toFixed(1));
        // Where an acknowledgement's durable barrier went, per commit (µs): `npm run bench` prints it.
        this.#log.info(
          { groups: times.groups, commits: times.commits, perCommitUs: { capture: per(times.capture), write: per(times.write), flush: per(times.flush), apply: per(times.apply) } },
          'journal group commits',
        );
      }
      this.#placement.bursts.close();
      await this.#journal?.close(); // its last checkpoint waits for the deferred files
      this.#deferred.close();
      this.#release?.();
      this.#indexClosed = true;
      await this.db.close();
    })();
    return this.#closing;
  }

  /** Reads of a closing or closed index are refused here, before they reach lmdb-js (see #indexClosed). */
  #readable(): void {
    if (this.#indexClosed) throw new SpoolError('CLOSED', 'spool is closed');
  }

}
