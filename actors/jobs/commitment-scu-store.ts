// Storage commitment asked of peers (the router as Push Model SCU), durable in two sub-databases of
// the spool's LMDB environment:
//   commitment-sent       transactionUid → SentRequest   (one N-ACTION the router sent)
//   commitment-sent-sops  [peer, sopInstanceUid] → SentInstance (the latest delivery of that instance
//                         to that peer and what became of its commitment)
// An instance delivered again (a `queue retry` after a failure) starts over: its entry is replaced.
import type { Database } from 'lmdb';
import type { SopReference } from '../../protocol/storage-commitment.ts';
import type { Spool } from '../ingest/spool.ts';

/**
 * delivered: C-STORE confirmed, not yet asked; requested: in an N-ACTION the peer took, report awaited;
 * committed: the peer's report says so; failed: its report says it failed, or none came within waitHours
 * (the instance is then a dead letter for the peer).
 */
export type SentInstanceState = 'delivered' | 'requested' | 'committed' | 'failed';

export type SentInstance = SopReference & {
  peer: string;
  /** The rule whose forward delivered it (a dead letter resends it with that rule's modifications). */
  rule?: string;
  state: SentInstanceState;
  /** ISO 8601. */
  deliveredAt: string;
  transactionUid?: string;
  requestedAt?: string;
  /** No report by then: failed. */
  waitUntil?: string;
  decidedAt?: string;
  /** Failure Reason (0008,1197) from the report, if it gave one. */
  failureReason?: number;
  /** In words: the reason code's meaning, or why no report counts as a failure. */
  why?: string;
  /** Tries to send an N-ACTION with it that did not get a response; next not before nextAttemptAt. */
  attempts: number;
  nextAttemptAt?: string;
  lastError?: string;
};

/** sending: recorded, N-ACTION under way; requested: the peer took it; done: every instance decided; abandoned: the N-ACTION failed or was interrupted (its instances asked again). */
export type SentRequestState = 'sending' | 'requested' | 'done' | 'abandoned';

export type SentRequest = {
  transactionUid: string;
  peer: string;
  referenced: SopReference[];
  state: SentRequestState;
  createdAt: string;
  requestedAt?: string;
  decidedAt?: string;
  committed?: number;
  failed?: number;
  /** How the report came: on our association or on the router's listener. */
  reportedVia?: 'same-association' | 'listener';
  error?: string;
};

type SopKey = [string, string];

export class CommitmentScuStore {
  readonly #spool: Spool;
  readonly #requests: Database<SentRequest, string>;
  readonly #sops: Database<SentInstance, SopKey>;

  constructor(spool: Spool) {
    this.#spool = spool;
    this.#requests = spool.db.openDB<SentRequest, string>({ name: 'commitment-sent' });
    this.#sops = spool.db.openDB<SentInstance, SopKey>({ name: 'commitment-sent-sops' });
  }

  instance(peer: string, sopInstanceUid: string): SentInstance | undefined {
    return this.#sops.get([peer, sopInstanceUid]);
  }

  /** Every peer's entries for one instance. */
  instancesOf(sopInstanceUid: string, peers: readonly string[]): SentInstance[] {
    return peers.map((p) => this.#sops.get([p, sopInstanceUid])).filter((s): s is SentInstance => s !== undefined);
  }

  /** A peer's entries (all, or those in a state). */
  instances(peer?: string, state?: SentInstanceState): SentInstance[] {
    const range = peer === undefined ? this.#sops.getRange({}) : this.#sops.getRange({ start: [peer, ''], end: [`${peer}\u0000`, ''] });
    return Array.from(range, ({ value }) => value).filter((s) => state === undefined || s.state === state);
  }

  request(transactionUid: string): SentRequest | undefined {
    return this.#requests.get(transactionUid);
  }

  requests(): SentRequest[] {
    return Array.from(this.#requests.getRange({}), ({ value }) => value);
  }

  /** Writes requests and instances in one durable transaction (the root's, which waits for the journal). */
  async write(requests: readonly SentRequest[], instances: readonly SentInstance[]): Promise<void> {
    await this.#spool.db.transaction(() => {
      for (const r of requests) this.#requests.put(r.transactionUid, r);
      for (const s of instances) this.#sops.put([s.peer, s.sopInstanceUid], s);
    });
  }

  /** Removes instances' entries (decided ones whose instance has left the spool). */
  async remove(instances: readonly SentInstance[]): Promise<void> {
    await this.#spool.db.transaction(() => {
      for (const s of instances) this.#sops.remove([s.peer, s.sopInstanceUid]);
    });
  }

  /** Removes decided requests older than `before` (their instances' entries stay: committed-downstream reads them). */
  async pruneRequests(before: Date): Promise<number> {
    const old = this.requests().filter((r) => (r.state === 'done' || r.state === 'abandoned') && Date.parse(r.decidedAt ?? r.createdAt) < before.getTime());
    if (old.length === 0) return 0;
    await this.#spool.db.transaction(() => {
      for (const r of old) this.#requests.remove(r.transactionUid);
    });
    return old.length;
  }
}
