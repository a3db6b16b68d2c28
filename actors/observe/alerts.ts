// The console's alerts (issue 14): ingest stopped (the journal could not be flushed), a peer's circuit open, dead letters present, spool disk above 80 %,
// a certificate expiring within 30 days, a rule file refused. Conditions are evaluated from the
// router's state every few seconds; each alert is logged once when it starts (warn) and once when it
// ends (info), and is the `dicom_router_alert{kind,subject}` gauge (1 while active, 0 once ended).
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export type AlertKind = 'ingest-stopped' | 'circuit-open' | 'dead-letters' | 'disk-full' | 'certificate-expiring' | 'rules-refused';

export type AlertCondition = { kind: AlertKind; subject: string; message: string };
export type Alert = AlertCondition & { since: string };

export const DISK_ALERT_PERCENT = 80;
export const CERTIFICATE_ALERT_DAYS = 30;

export class Alerts {
  private readonly log: Logger;
  private readonly gauge: Gauge;
  private readonly current = new Map<string, Alert>();

  constructor(log: Logger, registry: Registry) {
    this.log = log;
    this.gauge = new Gauge({
      name: 'dicom_router_alert',
      help: 'Console alerts: 1 while active, 0 once ended (kind: ingest-stopped, circuit-open, dead-letters, disk-full, certificate-expiring, rules-refused; subject: the peer, certificate, disk or rules folder)',
      labelNames: ['kind', 'subject'],
      registers: [registry],
    });
  }

  /** The conditions true now: new ones start, missing ones end. A changed message is no new alert. */
  update(conditions: AlertCondition[], now = new Date()): Alert[] {
    const seen = new Set<string>();
    for (const c of conditions) {
      const key = `${c.kind}|${c.subject}`;
      seen.add(key);
      const before = this.current.get(key);
      if (before) {
        before.message = c.message;
        continue;
      }
      const alert = { ...c, since: now.toISOString() };
      this.current.set(key, alert);
      this.gauge.set({ kind: c.kind, subject: c.subject }, 1);
      this.log.warn({ alert: c.kind, subject: c.subject, detail: c.message }, `alert: ${c.message}`);
    }
    for (const [key, alert] of this.current) {
      if (seen.has(key)) continue;
      this.current.delete(key);
      this.gauge.set({ kind: alert.kind, subject: alert.subject }, 0);
      this.log.info({ alert: alert.kind, subject: alert.subject, since: alert.since }, `alert ended: ${alert.kind} (${alert.subject})`);
    }
    return this.active();
  }

  active(): Alert[] {
    return [...this.current.values()];
  }
}
