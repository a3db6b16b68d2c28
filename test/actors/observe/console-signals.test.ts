// The console's signals, pure: a peer in words from its machines' snapshots, a waiting item's true
// next attempt (never a time in the past; later while the peer backs off or its circuit is open), the
// rates' buckets, and alerts logged once when they start and once when they end, as a gauge.
import test from 'ava';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Alerts } from '../../../actors/observe/alerts.ts';
import { nextAttemptInWords, trueNextAttempt } from '../../../actors/observe/next-attempt.ts';
import { peerInWords } from '../../../actors/observe/peer-words.ts';
import type { PeerSlotSnapshot } from '../../../actors/observe/peer-words.ts';
import { Rates } from '../../../actors/observe/rates.ts';

const NOW = Date.parse('2026-12-07T14:00:00.000Z');
const slot = (s: Partial<PeerSlotSnapshot>): PeerSlotSnapshot => ({ state: 'idle', circuit: 'closed', consecutiveFailures: 0, circuitThreshold: 5, ...s });
const refused = 'connection to 127.0.0.1:1 failed: connect ECONNREFUSED 127.0.0.1:1';

test('a peer in words: delivering, idle, retrying with the attempt and reason, circuit open until when after how many failures', (t) => {
  t.deepEqual(peerInWords([slot({ state: 'connected.sending' })], NOW), { condition: 'delivering', words: 'delivering' });
  t.deepEqual(peerInWords([slot({ state: 'connected.waiting' })], NOW), { condition: 'idle', words: 'idle' });
  t.deepEqual(peerInWords([slot({})], NOW), { condition: 'idle', words: 'idle' });
  const retrying = peerInWords([slot({ state: 'backingOff', consecutiveFailures: 2, lastError: refused, backoffUntil: new Date(NOW + 7_200).toISOString() })], NOW);
  t.deepEqual(retrying, { condition: 'retrying', words: 'retrying in 8 s (attempt 3 of 5): connection refused' });
  const until = new Date(NOW + 60_000);
  const open = peerInWords([slot({ state: 'circuitOpen', circuit: 'open', consecutiveFailures: 5, lastError: refused, backoffUntil: until.toISOString() })], NOW);
  t.is(open.condition, 'circuit-open');
  t.is(open.words, `circuit open until ${until.toLocaleTimeString('en-GB', { hour12: false })} after 5 failures: connection refused`);
  // The worst slot speaks for the peer.
  t.is(peerInWords([slot({ state: 'connected.sending' }), slot({ state: 'circuitOpen', consecutiveFailures: 5, backoffUntil: until.toISOString() })], NOW).condition, 'circuit-open');
  // An error the words do not know is shown as it is.
  t.regex(peerInWords([slot({ state: 'backingOff', consecutiveFailures: 1, lastError: 'A700 out of resources', backoffUntil: new Date(NOW).toISOString() })], NOW).words, /: A700 out of resources$/);
});

test('the true next attempt: due now rather than a past time; later while every slot of the peer backs off or has its circuit open', (t) => {
  const past = { nextAttemptAt: new Date(NOW - 3_600_000).toISOString() };
  const future = { nextAttemptAt: new Date(NOW + 30_000).toISOString() };
  t.deepEqual(trueNextAttempt(past, undefined, NOW), { at: new Date(NOW).toISOString(), dueNow: true });
  t.is(nextAttemptInWords(trueNextAttempt(past, [], NOW)), 'due now');
  t.deepEqual(trueNextAttempt(future, [{ state: 'idle' }], NOW), { at: future.nextAttemptAt, dueNow: false });
  const circuitEnds = new Date(NOW + 45_000).toISOString();
  const held = trueNextAttempt(past, [{ state: 'circuitOpen', backoffUntil: circuitEnds }], NOW);
  t.deepEqual(held, { at: circuitEnds, dueNow: false, heldBy: 'circuit-open' });
  t.is(nextAttemptInWords(held), `at ${circuitEnds} (peer circuit open)`);
  // An item's own later time wins over a shorter backoff.
  t.deepEqual(trueNextAttempt({ nextAttemptAt: new Date(NOW + 90_000).toISOString() }, [{ state: 'backingOff', backoffUntil: circuitEnds }], NOW).at, new Date(NOW + 90_000).toISOString());
  // One slot still able to send: the peer holds nothing back.
  t.true(trueNextAttempt(past, [{ state: 'backingOff', backoffUntil: circuitEnds }, { state: 'connected.sending' }], NOW).dueNow);
});

test('rates: per-second buckets over 5 minutes and 10-second buckets over the hour; older traffic falls out', (t) => {
  const rates = new Rates();
  rates.add(NOW - 500, 'in', 2_000_000);
  rates.add(NOW - 400, 'in', 2_000_000);
  rates.add(NOW - 300, 'out', 1_000_000);
  rates.add(NOW - 2 * 3_600_000, 'in', 9_000_000); // two hours ago: nowhere
  const { fiveMinutes, hour } = rates.series(NOW);
  t.is(fiveMinutes.t.length, 300);
  t.is(hour.t.length, 360);
  t.is(fiveMinutes.instancesIn.at(-1)! + fiveMinutes.instancesIn.at(-2)!, 2);
  t.is(fiveMinutes.mbIn.reduce((a, b) => a + b, 0), 4);
  t.is(hour.instancesOut.reduce((a, b) => a + b, 0) * 10, 1);
  t.deepEqual(rates.lastHour(NOW), { instancesIn: 2, instancesOut: 1, bytesIn: 4_000_000, bytesOut: 1_000_000 });
});

test('an alert is logged once when it starts and once when it ends, and is a gauge (1, then 0)', async (t) => {
  const lines: { level: number; msg: string; alert?: string; subject?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  const registry = new Registry();
  const alerts = new Alerts(log, registry);
  const open = { kind: 'circuit-open' as const, subject: 'PACS', message: 'PACS: circuit open until 14:01:00 after 5 failures: connection refused' };
  alerts.update([open]);
  alerts.update([{ ...open, message: 'PACS: circuit open until 14:02:00 after 6 failures: connection refused' }]);
  alerts.update([open]);
  t.is(lines.length, 1);
  t.is(lines[0].level, 40);
  t.is(lines[0].alert, 'circuit-open');
  t.regex(await registry.metrics(), /dicom_router_alert\{kind="circuit-open",subject="PACS"\} 1/);
  t.is(alerts.active().length, 1);
  alerts.update([]);
  alerts.update([]);
  t.is(lines.length, 2);
  t.is(lines[1].level, 30);
  t.regex(lines[1].msg, /^alert ended: circuit-open \(PACS\)$/);
  t.regex(await registry.metrics(), /dicom_router_alert\{kind="circuit-open",subject="PACS"\} 0/);
  t.deepEqual(alerts.active(), []);
});
