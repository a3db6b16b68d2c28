// A peer's `duplicates` policy (issue 8): when an instance already delivered to a peer, or still queued
// for it, is routed to it again. The outbound queue applies it in enqueue(), inside the instance's index
// transaction; this file holds the decision and what it records.
import { createHash } from 'node:crypto';
import type { DuplicatePolicy } from '../../config/config.ts';
import type { Delivery, EnqueueResult, QueueItem } from './outbound-queue.ts';

/**
 * An instance the peer's `duplicates` policy kept out of its queue. `id` is `${peer}:${seq}` like an
 * item's (same counter), so it names its key; `skipped: true` tells it from a QueueItem.
 */
export type SkippedDuplicate = {
  skipped: true;
  id: string;
  peer: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  rule: string;
  policy: Exclude<DuplicatePolicy, 'always'>;
  /** Why, for people: "already delivered at …", "already queued as …", "unchanged since the delivery at …". */
  why: string;
  /** The delivery or queue item that made it a duplicate. */
  duplicateOf: { delivery: string } | { item: string };
  fingerprint?: string;
  /** ISO 8601. */
  at: string;
};

export type DuplicateVerdict = Pick<SkippedDuplicate, 'policy' | 'why' | 'duplicateOf'>;

/**
 * What a peer receives, for `if-changed`: the stored dataset's hash and the rule's modifications (a rule
 * edit that changes what is written makes it "changed"). Transfer syntax conversion is not included: it
 * is decided per association and does not change the content.
 */
export function fingerprintOf(datasetSha256: string, modifications: unknown[]): string {
  return createHash('sha256').update(datasetSha256).update('\n').update(JSON.stringify(modifications)).digest('hex');
}

export function isSkipped(result: EnqueueResult): result is SkippedDuplicate {
  return (result as SkippedDuplicate).skipped === true;
}

/**
 * Is a new item a duplicate the peer's policy keeps out (a verdict), or is it queued (undefined)?
 * `never`: the instance is already pending for the peer, or was delivered to it. `if-changed`: what the
 * peer would receive (fingerprint) equals what its latest pending item will send, or else (none pending)
 * what it last confirmed. An unknown fingerprint (a row or delivery older than fingerprints) counts as
 * changed: resending never loses an image. Dead letters are not deliveries and are not passed here.
 */
export function duplicateVerdict(
  policy: Exclude<DuplicatePolicy, 'always'>,
  has: { pending?: QueueItem; delivery?: Delivery; fingerprint?: string },
): DuplicateVerdict | undefined {
  const { pending, delivery, fingerprint } = has;
  if (policy === 'never') {
    if (pending) return { policy, why: `already queued as ${pending.id}`, duplicateOf: { item: pending.id } };
    if (delivery) return { policy, why: `already delivered at ${delivery.at}`, duplicateOf: { delivery: delivery.id } };
    return undefined;
  }
  if (fingerprint === undefined) return undefined;
  if (pending) {
    return pending.fingerprint === fingerprint ? { policy, why: `unchanged, already queued as ${pending.id}`, duplicateOf: { item: pending.id } } : undefined;
  }
  if (delivery?.fingerprint === fingerprint) return { policy, why: `unchanged since the delivery at ${delivery.at}`, duplicateOf: { delivery: delivery.id } };
  return undefined;
}
