// What a peer's forwarder needs from its outbound queue (the seam of issue 17): the node's own LMDB
// queue (LocalForwardQueue, the default, exactly as before), or the cluster's shared PostgreSQL queue
// (actors/cluster/shared-queue.ts), where taking an item is a claim with a lease.
import type { EnqueueResult, NewQueueItem, OutboundQueue, QueueItem } from './outbound-queue.ts';
import type { RetryPolicy } from './retry-policy.ts';

export type FailedInfo = { status?: number; error: string; retryable: boolean; policy: RetryPolicy; statusOverride?: { status: string; outcome: string } };
export type DeliveredInfo = { status: number; statusOverride?: { status: string; outcome: string } };

export interface ForwardQueue {
  /** Due items to choose the presentation contexts from, next first (nothing is taken). */
  upcoming(peer: string, limit: number, inFlight: ReadonlySet<string>): Promise<QueueItem[]>;
  /** The next item to send now (head of its series), taken for this sender and added to `inFlight` before
   *  any other take can run (the peer's slots share that set); undefined when none is due. */
  take(peer: string, inFlight: Set<string>): Promise<QueueItem | undefined>;
  /** When the next item may be due (possibly past); undefined if nothing is pending. */
  nextDueAt(peer: string): Promise<Date | undefined>;
  /** A taken item that was not sent (the association must be renewed first): anyone may take it again. */
  giveBack(id: string): Promise<void>;
  delivered(id: string, info: DeliveredInfo): Promise<void>;
  failed(id: string, info: FailedInfo): Promise<QueueItem | undefined>;
  deadLetterDue(peer: string, reason: string, opts: { inFlight?: ReadonlySet<string> }): Promise<QueueItem[]>;
  /** A new item (a dead letter handed to its failover peer). */
  add(item: NewQueueItem): Promise<EnqueueResult>;
}

/** The node's own LMDB queue: taking is the forwarder's in-flight set, as it always was. */
export class LocalForwardQueue implements ForwardQueue {
  readonly #queue: OutboundQueue;

  constructor(queue: OutboundQueue) {
    this.#queue = queue;
  }

  async upcoming(peer: string, limit: number, inFlight: ReadonlySet<string>): Promise<QueueItem[]> {
    return this.#queue.pending(peer, { limit, inFlight });
  }

  async take(peer: string, inFlight: Set<string>): Promise<QueueItem | undefined> {
    // Synchronous up to here: no other slot takes the same item.
    const [item] = this.#queue.pending(peer, { limit: 1, inFlight });
    if (item) inFlight.add(item.id);
    return item;
  }

  async nextDueAt(peer: string): Promise<Date | undefined> {
    return this.#queue.nextDueAt(peer);
  }

  async giveBack(): Promise<void> {}

  delivered(id: string, info: DeliveredInfo): Promise<void> {
    return this.#queue.delivered(id, info);
  }

  failed(id: string, info: FailedInfo): Promise<QueueItem | undefined> {
    return this.#queue.failed(id, info);
  }

  deadLetterDue(peer: string, reason: string, opts: { inFlight?: ReadonlySet<string> }): Promise<QueueItem[]> {
    return this.#queue.deadLetterDue(peer, reason, opts);
  }

  add(item: NewQueueItem): Promise<EnqueueResult> {
    return this.#queue.add(item);
  }
}
