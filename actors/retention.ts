// Spool retention: a spool file is removed only once every destination has confirmed it (no queue
// item, pending or dead, still refers to it) and the keep period has passed since the last
// confirmation (or since receipt, for an instance no rule forwarded). Never before.
import type { Logger } from 'pino';
import type { OutboundQueue } from './outbound-queue.ts';
import type { Spool } from './spool.ts';

export type RetentionResult = { removed: number; kept: number };

/** One pass over the spool: removes what is past its keep period. */
export async function sweepSpool(spool: Spool, queue: OutboundQueue, keepMs: number, log: Logger, now = Date.now()): Promise<RetentionResult> {
  let removed = 0;
  let kept = 0;
  for (const record of spool.list()) {
    if (queue.outstanding(record.sopInstanceUid) > 0) {
      kept++;
      continue;
    }
    const confirmed = queue.deliveries(record.sopInstanceUid).map((d) => Date.parse(d.at));
    const since = Math.max(Date.parse(record.receivedAt), ...confirmed);
    if (now - since < keepMs) {
      kept++;
      continue;
    }
    if (await spool.remove(record.sopInstanceUid)) {
      removed++;
      log.info({ sopInstanceUid: record.sopInstanceUid, path: record.path, deliveries: confirmed.length }, 'retention: spool file removed');
    }
  }
  return { removed, kept };
}

/** Sweeps now and then every `everyMs`; returns a stop function. */
export function startRetention(spool: Spool, queue: OutboundQueue, keepMs: number, log: Logger, everyMs = 10 * 60_000): () => void {
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    sweepSpool(spool, queue, keepMs, log)
      .then((r) => r.removed > 0 && log.info(r, 'retention sweep'))
      .catch((err: Error) => log.error({ err: err.message }, 'retention sweep failed'))
      .finally(() => (running = false));
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return () => clearInterval(timer);
}
