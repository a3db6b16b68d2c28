// Storage commitment requests, durable: a sub-database `commitments` of the spool's LMDB environment,
// one record per request (key: its id, the Transaction UID, or `${uid}#dup-N` for a request that
// reused one), from the N-ACTION until its N-EVENT-REPORT is acknowledged. The same durability as the
// queue's deliveries (actors/ingest/spool.ts): a process crash loses nothing; a power loss at most the
// last checkpoint (≤ 10 s), and then the requester, which never got a report, asks again: nothing is
// committed that was not.
import type { Database } from 'lmdb';
import type { CommitWhen } from '../../config/config.ts';
import type { CommitmentResult, SopReference } from '../../protocol/storage-commitment.ts';
import type { Spool } from '../ingest/spool.ts';

/** waiting: for the instances to be committed; reporting: the result is known, the N-EVENT-REPORT not yet acknowledged. */
export type CommitmentState = 'waiting' | 'reporting' | 'reported';

export type CommitmentRecord = {
  id: string;
  transactionUid: string;
  listener: string;
  /** The requester (its calling AE title) and the AE title it called (the report comes from it). */
  callingAeTitle: string;
  calledAeTitle: string;
  /** The configured peer the report goes to (its aeTitle is callingAeTitle). */
  peer: string;
  commitWhen: CommitWhen;
  report: 'same-association-first' | 'always-new-association';
  referenced: SopReference[];
  /** ISO 8601. */
  receivedAt: string;
  deadline: string;
  state: CommitmentState;
  result?: CommitmentResult;
  /** Why each failed instance failed, by SOP Instance UID (the N-EVENT-REPORT carries only the reason code). */
  why?: Record<string, string>;
  /** What the instances still wait for, by SOP Instance UID (console, `commitments` CLI). */
  waitingFor?: Record<string, string>;
  reportAttempts: number;
  nextReportAt?: string;
  lastReportError?: string;
  reportedAt?: string;
  /** The requester answered the report with a final refusal (e.g. 0211 transaction not recognized): not sent again. */
  reportRefused?: string;
  /** How it was reported: on the requester's association, or on one of ours. */
  reportedVia?: 'same-association' | 'new-association';
  /** A cluster node (issue 17): the request's key in PostgreSQL (origin node / its id there). */
  clusterId?: string;
};

export class CommitmentStore {
  readonly #db: Database<CommitmentRecord, string>;
  readonly #spool: Spool;

  constructor(spool: Spool) {
    this.#spool = spool;
    this.#db = spool.db.openDB<CommitmentRecord, string>({ name: 'commitments' });
  }

  get(id: string): CommitmentRecord | undefined {
    return this.#db.get(id);
  }

  /** Every record, reported ones included, in id order. */
  list(): CommitmentRecord[] {
    return [...this.#db.getRange({}).map(({ value }) => value)];
  }

  /** Records not reported yet. */
  open(): CommitmentRecord[] {
    return this.list().filter((r) => r.state !== 'reported');
  }

  /**
   * Stores a new request under its Transaction UID, or, when that UID is already known (PS3.4 J.3.3.1.1.2:
   * 0131 duplicate transaction UID), under `${uid}#dup-N` with `duplicate` true: one transaction.
   */
  async add(record: Omit<CommitmentRecord, 'id'>, duplicate: (r: Omit<CommitmentRecord, 'id'>) => Omit<CommitmentRecord, 'id'>): Promise<CommitmentRecord> {
    let stored: CommitmentRecord | undefined;
    await this.#spool.db.transaction(() => {
      if (this.#db.get(record.transactionUid) === undefined) {
        stored = { ...record, id: record.transactionUid };
      } else {
        let n = 1;
        while (this.#db.get(`${record.transactionUid}#dup-${n}`) !== undefined) n++;
        stored = { ...duplicate(record), id: `${record.transactionUid}#dup-${n}` };
      }
      this.#db.put(stored.id, stored);
    });
    return stored!;
  }

  /** Removes reported records reported before `before`; how many. */
  async pruneReported(before: Date): Promise<number> {
    const old = this.list().filter((r) => r.state === 'reported' && r.reportedAt !== undefined && Date.parse(r.reportedAt) < before.getTime());
    if (old.length === 0) return 0;
    await this.#spool.db.transaction(() => {
      for (const r of old) this.#db.remove(r.id);
    });
    return old.length;
  }

  /** Through the root's transaction(), which waits for the journal to be quiet like every write outside it (actors/ingest/redo-capture.ts). */
  async put(record: CommitmentRecord): Promise<void> {
    await this.#spool.db.transaction(() => {
      this.#db.put(record.id, record);
    });
  }
}
