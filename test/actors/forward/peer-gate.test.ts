import test from 'ava';
import { PeerGates } from '../../../actors/forward/peer-gate.ts';

test('an exclusive peer gives one turn at a time, in arrival order; other peers pass straight through', async (t) => {
  const gates = new PeerGates(['VP']);
  const order: string[] = [];
  const first = await gates.acquire('VP');
  const second = gates.acquire('VP').then((end) => (order.push('second'), end));
  const third = gates.acquire('VP').then((end) => (order.push('third'), end));
  const other = await gates.acquire('PACS'); // not exclusive: no wait
  other();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, [], 'nobody else while the first holds its turn');
  first();
  first(); // ending a turn twice is harmless: it does not hand out a second turn
  const endSecond = await second;
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['second']);
  endSecond();
  (await third)();
  t.deepEqual(order, ['second', 'third']);
  t.true(gates.isExclusive('VP'));
  t.false(gates.isExclusive('PACS'));
  // After everyone is done, a new turn is immediate.
  (await gates.acquire('VP'))();
});
