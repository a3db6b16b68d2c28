// A series sent again overwrites every instance of it: that is routine (a resend after a timeout, a
// study pushed twice), and 300 warn lines for it hide what matters. The first duplicate of a burst is
// a warn line; the rest of the burst are info lines with their place in it; when no duplicate has come
// for `quietMs`, one info line says how many the burst overwrote.
import type { Logger } from 'pino';

export class DuplicateBursts {
  #log: Logger;
  #quietMs: number;
  #count = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, quietMs = 30_000) {
    this.#log = log;
    this.#quietMs = quietMs;
  }

  /** One instance overwritten by a copy of itself; `fields` say which and how. */
  overwritten(fields: Record<string, unknown>): void {
    this.#count++;
    if (this.#count === 1) {
      this.#log.warn({ ...fields, burst: 1 }, 'duplicate SOP Instance UID: overwritten');
    } else {
      this.#log.info({ ...fields, burst: this.#count }, 'duplicate SOP Instance UID: overwritten');
    }
    if (this.#timer) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => this.#end(), this.#quietMs);
      this.#timer.unref();
    }
  }

  /** The burst so far is summed up now (at close). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#end();
  }

  #end(): void {
    this.#timer = undefined;
    if (this.#count > 1) this.#log.info({ overwritten: this.#count }, `duplicate burst ended: ${this.#count} instances overwritten by copies of themselves`);
    this.#count = 0;
  }
}
