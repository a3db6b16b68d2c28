// The pool's clients are reused: what checkout() adds to a client must not pile up with each checkout.
import test from 'ava';
import pg from 'pg';
import { checkout } from '../../actors/cluster/pg-connection.ts';
import { startPostgres } from '../helpers/postgres.ts';

test('checkout: one error listener per connection however often the pool hands it out; an error on it is heard', async (t) => {
  const server = await startPostgres();
  t.teardown(server.stop);
  const pool = new pg.Pool({ connectionString: server.url, max: 1 });
  t.teardown(() => pool.end());
  const first = await checkout(pool);
  const listeners = first.listenerCount('error');
  first.release();
  for (let i = 0; i < 50; i++) {
    const client = await checkout(pool);
    t.is(client, first, 'the pool reuses its one connection');
    await client.query('SELECT 1');
    client.release();
  }
  const again = await checkout(pool);
  t.is(again.listenerCount('error'), listeners, 'no listener added per checkout');
  t.notThrows(() => again.emit('error', new Error('connection dropped between two queries')), 'heard, not an uncaught error');
  again.release();
});
