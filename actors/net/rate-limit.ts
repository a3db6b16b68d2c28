// Association attempts per source address: a sliding window, so a flood from one address is
// turned away at the socket while every other address keeps its full share.
export class AttemptLimiter {
  readonly max: number;
  readonly windowMs: number;
  private readonly attempts = new Map<string, number[]>();

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
  }

  /** Records an attempt from `address`; false when it is over the limit. */
  allow(address: string, now = Date.now()): boolean {
    const since = now - this.windowMs;
    const recent = (this.attempts.get(address) ?? []).filter((t) => t > since);
    const allowed = recent.length < this.max;
    if (allowed) recent.push(now);
    this.attempts.set(address, recent);
    // Forget quiet addresses now and then, so the map stays as small as the set of active senders.
    if (this.attempts.size > 10_000) for (const [a, ts] of this.attempts) if (ts.every((t) => t <= since)) this.attempts.delete(a);
    return allowed;
  }
}
