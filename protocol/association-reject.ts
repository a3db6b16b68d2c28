// An A-ASSOCIATE-RJ in words an operator reads (PS3.8 9.3.4, Table 9-21): who rejected, why, and
// whether trying again can help. Used for dead-letter reasons and log lines.
import type { AssociateRj } from './pdu.types.ts';

const SOURCES: Record<number, string> = { 1: 'service-user', 2: 'service-provider (ACSE)', 3: 'service-provider (presentation)' };

/** Reason by `source/reason` (the meaning of a reason number depends on its source). */
const REASONS: Record<string, string> = {
  '1/1': 'no reason given',
  '1/2': 'application context name not supported',
  '1/3': 'calling AE title not recognized',
  '1/7': 'called AE title not recognized',
  '2/1': 'no reason given',
  '2/2': 'protocol version not supported',
  '3/1': 'temporary congestion',
  '3/2': 'local limit exceeded',
};

export function isPermanentReject(rj: Pick<AssociateRj, 'result'>): boolean {
  return rj.result === 1;
}

/**
 * E.g. `called AE title not recognized by PACS (A-ASSOCIATE-RJ rejected-permanent, source 1 service-user, reason 7)`.
 * `by`: the AE title that answered.
 */
export function rejectInWords(rj: Pick<AssociateRj, 'result' | 'source' | 'reason'>, by: string): string {
  const why = REASONS[`${rj.source}/${rj.reason}`] ?? `reserved reason ${rj.reason}`;
  const result = isPermanentReject(rj) ? 'rejected-permanent' : 'rejected-transient';
  return `${why} by ${by} (A-ASSOCIATE-RJ ${result}, source ${rj.source} ${SOURCES[rj.source] ?? 'unknown'}, reason ${rj.reason})`;
}
