import test from 'ava';
import { collectingSink } from '../../../actors/net/collecting-sink.ts';

test('fragments are handed over whole, in order, at the end; the written buffers may be reused meanwhile', (t) => {
  const got: Uint8Array[] = [];
  const sink = collectingSink((d) => got.push(d));
  const buffer = Uint8Array.of(1, 2, 3);
  t.true(sink.write(buffer));
  buffer.fill(9); // the caller's buffer is its own again once written
  t.true(sink.write(Uint8Array.of(4)));
  t.deepEqual(got, [], 'nothing before the end');
  sink.end();
  t.deepEqual(got.map((d) => [...d]), [[1, 2, 3, 4]]);
});

test('within its limit a dataset is handed over; past it, only its size is told, and nothing is held', (t) => {
  const done: number[][] = [];
  const exceeded: number[] = [];
  const sinkOf = () => collectingSink((d) => done.push([...d]), { maxBytes: 4, exceeded: (size) => exceeded.push(size) });
  const atLimit = sinkOf();
  atLimit.write(Uint8Array.of(1, 2));
  atLimit.write(Uint8Array.of(3, 4));
  atLimit.end();
  const over = sinkOf();
  over.write(Uint8Array.of(1, 2, 3));
  over.write(Uint8Array.of(4, 5));
  over.write(Uint8Array.of(6));
  over.end();
  t.deepEqual(done, [[1, 2, 3, 4]]);
  t.deepEqual(exceeded, [6]);
});
