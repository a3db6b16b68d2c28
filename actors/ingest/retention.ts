// Spool retention: a spool file is removed only once every destination has confirmed it (no queue
// item, pending or dead, still refers to it) and the keep period has passed since the last
// confirmation (or since receipt, for an instance no rule forwarded). Never before.
import type { Logger } from 'pino';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import type { Spool } from './spool.ts';

export type RetentionResult = { removed: number; kept: number };

const SKIPPED_KEEP_MIN_MS = 24 * 3600_000;

/** Instances held by something that will still send them: members of series/studies waiting for completion. */
export type RetentionHolds = { holds(sopInstanceUid: string): boolean; prune?(keepMs: number): Promise<number> };

/** One pass over the spool: removes what is past its keep period. */
export async function sweepSpool(spool: Spool, queue: OutboundQueue, keepMs: number, log: Logger, now = Date.now(), held?: RetentionHolds): Promise<RetentionResult> {
  let removed = 0;
  let kept = 0;
  for (const record of spool.list()) {
    if (queue.outstanding(record.sopInstanceUid) > 0 || held?.holds(record.sopInstanceUid)) {
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
  // Records of skipped duplicates (peers' `duplicates` policy) go after the keep period too, but an
  // operator gets at least a day to see them in `router queue ls`.
  const pruned = await queue.pruneSkipped(new Date(now - Math.max(keepMs, SKIPPED_KEEP_MIN_MS)));
  if (pruned > 0) log.info({ pruned }, 'retention: skipped-duplicate records pruned');
  return { removed, kept };
}

/** Sweeps now and every `everyMs`; the function it returns stops it and resolves once a sweep under
 *  way has ended (the spool must not be closed under it). */
export function startRetention(spool: Spool, queue: OutboundQueue, keepMs: number, log: Logger, everyMs = 10 * 60_000, held?: RetentionHolds): () => Promise<void> {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running) return;
    running = sweepSpool(spool, queue, keepMs, log, Date.now(), held)
      .then(async (r) => {
        if (r.removed > 0) log.info(r, 'retention sweep');
        // Fired completion groups are kept as long as the instances, for their afterFired policy.
        await held?.prune?.(keepMs);
      })
      .catch((err: Error) => log.error({ err: err.message }, 'retention sweep failed'))
      .finally(() => (running = undefined));
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
