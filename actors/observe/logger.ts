// pino JSON logs; each association gets a child logger (assoc id, listener, peer, AE titles)
// so an integrator can follow one association with a grep.
import { pino } from 'pino';
import type { Logger } from 'pino';

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'dicom-router' }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? pino.destination(1));
}
