// Q/R associations to the archives (issue 16): at most maxAssociations at once per archive, FIFO; and a
// peer that takes one association at a time (peers[].exclusive, Canon Virtual Place) gets one at a
// time whoever opens it: a Q/R association and a move destination's association wait for the
// forwarder's (the PeerGates turn they share).
import test from 'ava';
import { PeerGates } from '../../../actors/forward/peer-gate.ts';
import { AssociationSlots } from '../../../actors/jobs/qr-scp.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

test('at most maxAssociations at once per peer, the waiting served in order', async (t) => {
  const slots = new AssociationSlots(() => 2);
  let open = 0;
  let most = 0;
  const order: number[] = [];
  const releases: (() => void)[] = [];
  const runs = [1, 2, 3, 4].map((n) => slots.with('ARCH', async () => {
    open++;
    most = Math.max(most, open);
    order.push(n);
    await new Promise<void>((r) => releases.push(r));
    open--;
  }));
  await tick();
  t.deepEqual(order, [1, 2]);
  releases.shift()!();
  await tick();
  t.deepEqual(order, [1, 2, 3]);
  while (releases.length > 0 || order.length < 4) {
    releases.shift()?.();
    await tick();
  }
  await Promise.all(runs);
  t.is(most, 2);
});

test('an exclusive peer: a Q/R association waits for the forwarder\'s turn, and a move destination\'s for the Q/R one', async (t) => {
  const gates = new PeerGates(['VP']);
  const slots = new AssociationSlots(() => 1, gates);
  const events: string[] = [];
  const forwarderEnds = await gates.acquire('VP'); // the forwarder has its association open
  const query = slots.with('VP', async () => {
    events.push('query');
    await tick();
    events.push('query done');
  });
  await tick();
  t.deepEqual(events, [], 'the query waits while the forwarder holds the peer');
  const destination = slots.turn('VP').then((end) => {
    events.push('destination');
    end();
  });
  forwarderEnds();
  await Promise.all([query, destination]);
  t.deepEqual(events, ['query', 'query done', 'destination'], 'one association at a time, in turn');
  // Another peer is not held up by any of it.
  const other = await Promise.race([slots.turn('ARCH').then(() => 'at once'), tick().then(() => 'waited')]);
  t.is(other, 'at once');
});
