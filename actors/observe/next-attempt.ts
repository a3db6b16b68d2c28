// When a waiting item will truly be tried (issue 14): its own retry time (QueueItem.nextAttemptAt, set
// when a delivery failed), or later while its peer cannot be reached: a reconnect backoff or an open
// circuit hold every item of the peer until the peer machine tries again. A time already past means
// "due now" (the item waits for its turn), never a time in the past.

/** A peer machine slot as the console and `/api/peers` show it. */
export type PeerSlotHold = { state: string; backoffUntil?: string | null };

export type NextAttempt = { at: string; dueNow: boolean; heldBy?: 'backoff' | 'circuit-open' };

/** The end of the peer's hold, if every slot is backing off or has its circuit open. */
export function peerHold(slots: PeerSlotHold[] | undefined): { until: string; by: 'backoff' | 'circuit-open' } | undefined {
  if (!slots || slots.length === 0) return undefined;
  const held = slots.filter((s) => (s.state === 'backingOff' || s.state === 'circuitOpen') && s.backoffUntil);
  if (held.length < slots.length) return undefined; // one slot can still send
  const first = held.reduce((a, b) => (b.backoffUntil! < a.backoffUntil! ? b : a));
  return { until: first.backoffUntil!, by: first.state === 'circuitOpen' ? 'circuit-open' : 'backoff' };
}

export function trueNextAttempt(item: { nextAttemptAt: string }, slots: PeerSlotHold[] | undefined, now = Date.now()): NextAttempt {
  const hold = peerHold(slots);
  const own = Date.parse(item.nextAttemptAt);
  if (hold && Date.parse(hold.until) > Math.max(own, now)) return { at: hold.until, dueNow: false, heldBy: hold.by };
  if (own > now) return { at: item.nextAttemptAt, dueNow: false };
  return { at: new Date(now).toISOString(), dueNow: true };
}

/** For people: 'due now', 'at 14:02:10 (circuit open)'. */
export function nextAttemptInWords(next: NextAttempt): string {
  if (next.dueNow) return 'due now';
  const why = next.heldBy === 'circuit-open' ? ' (peer circuit open)' : next.heldBy === 'backoff' ? ' (peer backing off)' : '';
  return `at ${next.at}${why}`;
}
