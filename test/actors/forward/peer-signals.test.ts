// An operator hears about a failing peer once per change, in words (issue 14): a backoff starting and
// the circuit opening at warn with the reason, the circuit closing at info; and `queue retry` (the
// inspector API sends RETRY_REQUESTED) wakes a peer out of an open circuit at once.
import test from 'ava';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { peerId } from '../../../machines/router.machine.ts';
import type { PeerActorRef } from '../../../machines/peer.machine.ts';
import { eventually, routerWith, send } from '../../helpers/in-process-router.ts';
import { freePort } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write: (chunk, _enc, done) => (lines.push(...String(chunk).trim().split('\n').map((l) => JSON.parse(l))), done()) });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

test('a peer going down and coming back: backoff and circuit open at warn with the reason, closed at info; a retry ends the open circuit at once', async (t) => {
  const port = await freePort();
  const log = capture();
  const r = await routerWith(
    // Reconnect backoff 0.05-0.1 s: five failures open the circuit quickly; it would stay open 60 s.
    [{ aeTitle: 'PEER', host: '127.0.0.1', port, retry: { attempts: 50, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.1, jitter: 0 } }],
    'rules:\n  - name: all\n    then: { forward: [PEER] }\n',
    { logger: log.logger },
  );
  t.teardown(() => r.stop(0));
  await send(r.port, r.dir, [{}]);
  await eventually(t, 'the circuit opens', () => log.lines.some((l) => l.msg?.toString().startsWith('circuit open')));
  const backoffs = log.lines.filter((l) => l.msg === 'association failed: backing off before the next attempt');
  t.is(backoffs.length, 4, 'one line per backoff (the fifth failure opens the circuit instead)');
  t.is(backoffs[0].level, 40);
  t.regex(String(backoffs[0].reason), /ECONNREFUSED/);
  t.truthy(backoffs[0].nextAttemptAt);
  const open = log.lines.find((l) => l.msg?.toString().startsWith('circuit open'))!;
  t.like(open, { level: 40, peer: 'PEER', consecutiveFailures: 5 });
  t.truthy(open.until);
  // The peer comes back; an operator retries: no waiting out the 60 s.
  const scp = await scriptedScp({ port });
  t.teardown(scp.close);
  (r.actor.system.get(peerId('PEER')) as PeerActorRef).send({ type: 'RETRY_REQUESTED' });
  await eventually(t, 'delivered and the circuit closed', () => scp.stores.length === 1 && log.lines.some((l) => l.msg === 'circuit closed: the peer answers again'));
  t.is(log.lines.find((l) => l.msg === 'circuit closed: the peer answers again')!.level, 30);
  t.is(log.lines.filter((l) => l.msg?.toString().startsWith('circuit open')).length, 1, 'said once');
});
