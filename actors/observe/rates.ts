// Rates for the console's live charts, from the domain events: counts and bytes in time buckets, one
// ring of 1-second buckets (the last 5 minutes) and one of 10-second buckets (the last hour). Fixed
// memory whatever the traffic.

export type RateSeries = {
  /** Bucket start times, seconds since the epoch (uPlot's x axis). */
  t: number[];
  instancesIn: number[];
  instancesOut: number[];
  /** Per second, averaged over the bucket. */
  mbIn: number[];
  mbOut: number[];
};

type Bucket = { start: number; instancesIn: number; instancesOut: number; bytesIn: number; bytesOut: number };

class Ring {
  private readonly buckets: Bucket[];
  readonly widthMs: number;

  constructor(widthMs: number, count: number) {
    this.widthMs = widthMs;
    this.buckets = Array.from({ length: count }, () => ({ start: -1, instancesIn: 0, instancesOut: 0, bytesIn: 0, bytesOut: 0 }));
  }

  private bucket(at: number): Bucket {
    const start = Math.floor(at / this.widthMs) * this.widthMs;
    const b = this.buckets[(start / this.widthMs) % this.buckets.length];
    if (b.start !== start) Object.assign(b, { start, instancesIn: 0, instancesOut: 0, bytesIn: 0, bytesOut: 0 });
    return b;
  }

  add(at: number, direction: 'in' | 'out', bytes: number): void {
    const b = this.bucket(at);
    if (direction === 'in') {
      b.instancesIn++;
      b.bytesIn += bytes;
    } else {
      b.instancesOut++;
      b.bytesOut += bytes;
    }
  }

  /** Every bucket of the window ending now, oldest first, empty ones as zeros; rates per second. */
  series(now: number): RateSeries {
    const out: RateSeries = { t: [], instancesIn: [], instancesOut: [], mbIn: [], mbOut: [] };
    const last = Math.floor(now / this.widthMs) * this.widthMs;
    const perSecond = 1000 / this.widthMs;
    for (let i = this.buckets.length - 1; i >= 0; i--) {
      const start = last - i * this.widthMs;
      const b = this.buckets[(start / this.widthMs) % this.buckets.length];
      const live = b.start === start;
      out.t.push(start / 1000);
      out.instancesIn.push(live ? b.instancesIn * perSecond : 0);
      out.instancesOut.push(live ? b.instancesOut * perSecond : 0);
      out.mbIn.push(live ? (b.bytesIn / 1e6) * perSecond : 0);
      out.mbOut.push(live ? (b.bytesOut / 1e6) * perSecond : 0);
    }
    return out;
  }

  /** Totals over the window ending now. */
  totals(now: number): { instancesIn: number; instancesOut: number; bytesIn: number; bytesOut: number } {
    const since = now - this.widthMs * this.buckets.length;
    const sum = { instancesIn: 0, instancesOut: 0, bytesIn: 0, bytesOut: 0 };
    for (const b of this.buckets) {
      if (b.start <= since) continue;
      sum.instancesIn += b.instancesIn;
      sum.instancesOut += b.instancesOut;
      sum.bytesIn += b.bytesIn;
      sum.bytesOut += b.bytesOut;
    }
    return sum;
  }
}

export class Rates {
  private readonly fiveMinutes = new Ring(1000, 300);
  private readonly hour = new Ring(10_000, 360);

  add(at: number, direction: 'in' | 'out', bytes: number): void {
    this.fiveMinutes.add(at, direction, bytes);
    this.hour.add(at, direction, bytes);
  }

  series(now = Date.now()): { fiveMinutes: RateSeries; hour: RateSeries } {
    return { fiveMinutes: this.fiveMinutes.series(now), hour: this.hour.series(now) };
  }

  /** Instances and bytes in and out over the last hour. */
  lastHour(now = Date.now()) {
    return this.hour.totals(now);
  }
}
