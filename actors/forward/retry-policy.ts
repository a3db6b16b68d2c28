// What a forwarding attempt's outcome means for its queue item, and how long to wait before the next
// try: pure policy (no LMDB, no clock), shared by the forwarder and prefetch jobs.
import { statusCategory } from '../../protocol/status.ts';

export type RetryPolicy = { attempts: number; initialBackoffMs: number; maxBackoffMs: number; jitter: number /* 0..1 */ };

/**
 * Wait before the next try after `attempt` failed tries (attempt >= 1): initialBackoffMs doubling per
 * attempt, capped at maxBackoffMs, then spread by ±jitter (so a capped wait may exceed the cap by the
 * jitter fraction, as configured: "0.2 = ±20%").
 */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(exponent, 52));
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}

/**
 * What a C-STORE-RSP status means for the queue (issue 3, PS3.7 C, PS3.4 B.2.3):
 * 0000 and warnings (Bxxx, 0001, 0107, 0116) → delivered; A7xx (out of resources) and 0213 (resource
 * limitation) → retry; everything else (A9xx, Cxxx, 0122, 0124, other failures, and statuses a C-STORE
 * must not answer: pending, cancel) → dead. Our reading of "become dead letters after the configured
 * attempts": such a status is a permanent answer about this instance, so retrying cannot change it; the
 * item is dead at once (the configured attempts bound the retryable failures).
 */
export function classifyStatus(status: number): 'delivered' | 'retry' | 'dead' {
  const category = statusCategory(status);
  if (category === 'success' || category === 'warning') return 'delivered';
  if ((status & 0xff00) === 0xa700 || status === 0x0213) return 'retry';
  return 'dead';
}

/** A status's outcome for one peer: its configured override (peers[].statusOverrides), else the standard reading. */
export function outcomeOf(status: number, overrides: Readonly<Record<string, 'delivered' | 'retry' | 'dead'>> = {}): { verdict: 'delivered' | 'retry' | 'dead'; overridden: boolean } {
  const override = overrides[statusKey(status)];
  return override ? { verdict: override, overridden: true } : { verdict: classifyStatus(status), overridden: false };
}

/** The key of a status in peers[].statusOverrides: 4 upper-case hex digits. */
export function statusKey(status: number): string {
  return status.toString(16).toUpperCase().padStart(4, '0');
}

/**
 * An association that could not be opened: an A-ASSOCIATE-RJ with result 1 (rejected-permanent, PS3.8
 * 9.3.4) → dead; result 2 (rejected-transient), refused connections, timeouts, aborts, resets → retry.
 * Duck-typed on `rj.result` (AssociationRejectedError of actors/net/scu.ts) so this file needs no SCU.
 */
export function classifyAssociationFailure(e: unknown): 'retry' | 'dead' {
  const rj = (e as { rj?: { result?: unknown } } | null | undefined)?.rj;
  return rj?.result === 1 ? 'dead' : 'retry';
}
