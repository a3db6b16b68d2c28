// A peer's state in the words an operator reads (issue 14): "delivering", "idle", "retrying in 8 s
// (attempt 3 of 5): connection refused", "circuit open until 14:02:10 after 5 failures". Pure: from
// the peer machines' snapshots (one per association slot) and the clock.
import { failureReason } from './metrics.ts';

export type PeerSlotSnapshot = {
  /** Top-level state path of the peer machine ('idle', 'connected.sending', 'backingOff' …). */
  state: string;
  circuit: 'closed' | 'open' | 'halfOpen';
  consecutiveFailures: number;
  circuitThreshold: number;
  lastError?: string;
  backoffUntil?: string;
};

export type PeerCondition = 'delivering' | 'connecting' | 'idle' | 'retrying' | 'circuit-open' | 'stopped';

/** Why an association failed, in words ('connection refused', 'rejected (transient)' …), from the forwarder's error. */
export function reasonInWords(error: string | undefined): string {
  if (!error) return 'unknown error';
  const reason = failureReason(error);
  const words: Record<string, string> = {
    'connection-refused': 'connection refused',
    'rejected-permanent': 'association rejected (permanent)',
    'rejected-transient': 'association rejected (transient)',
    timeout: 'timed out',
    tls: 'TLS failure',
  };
  return words[reason] ?? (error.length > 160 ? `${error.slice(0, 160)}…` : error);
}

const clock = (iso: string) => new Date(iso).toLocaleTimeString('en-GB', { hour12: false });

/** The condition of the whole peer (its worst slot first: an open circuit, then a backoff, then work). */
export function peerInWords(slots: PeerSlotSnapshot[], now = Date.now()): { condition: PeerCondition; words: string } {
  const open = slots.find((s) => s.state === 'circuitOpen');
  if (open) {
    const failures = open.consecutiveFailures;
    const until = open.backoffUntil ? ` until ${clock(open.backoffUntil)}` : '';
    return { condition: 'circuit-open', words: `circuit open${until} after ${failures} failure${failures === 1 ? '' : 's'}: ${reasonInWords(open.lastError)}` };
  }
  const backing = slots.find((s) => s.state === 'backingOff');
  if (backing) {
    const seconds = backing.backoffUntil ? Math.max(0, Math.ceil((Date.parse(backing.backoffUntil) - now) / 1000)) : 0;
    // The attempt that comes next, of those allowed before the circuit opens.
    const attempt = backing.consecutiveFailures + 1;
    return { condition: 'retrying', words: `retrying in ${seconds} s (attempt ${attempt} of ${backing.circuitThreshold}): ${reasonInWords(backing.lastError)}` };
  }
  if (slots.some((s) => s.state.startsWith('connected.sending'))) return { condition: 'delivering', words: 'delivering' };
  if (slots.some((s) => s.state === 'connecting')) {
    const half = slots.some((s) => s.state === 'connecting' && s.circuit === 'halfOpen');
    return { condition: 'connecting', words: half ? 'connecting (one try after the circuit was open)' : 'connecting' };
  }
  if (slots.length > 0 && slots.every((s) => s.state === 'stopped')) return { condition: 'stopped', words: 'stopped' };
  return { condition: 'idle', words: 'idle' };
}
