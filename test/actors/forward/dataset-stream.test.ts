import test from 'ava';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { datasetBytes, pdvPayloads } from '../../../actors/forward/dataset-stream.ts';
import { tempDir } from '../../helpers/processes.ts';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* from(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}

test('payloads are exactly max bytes but the last, which alone is flagged last, and carry every byte in order', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 12 }), fc.integer({ min: 1, max: 1024 }), async (chunks, max) => {
      const out = await collect(pdvPayloads(from(chunks), max));
      const all = Buffer.concat(chunks);
      t.true(Buffer.concat(out.map((p) => p.data)).equals(all));
      t.deepEqual(out.map((p) => p.isLast), out.map((_, i) => i === out.length - 1));
      for (const p of out.slice(0, -1)) t.is(p.data.length, max);
      t.true(out.at(-1)!.data.length <= max);
      if (all.length > 0) t.true(out.at(-1)!.data.length > 0, 'no empty trailing payload after data');
    }),
    { numRuns: 200 },
  );
});

test('a prepared source is its replacement header, then the file from the given offset', async (t) => {
  const path = join(tempDir(), 'f.bin');
  writeFileSync(path, Buffer.from('0123456789abcdef'));
  const bytes = Buffer.concat(await collect(datasetBytes({ kind: 'prepared', head: Buffer.from('HEAD:'), path, offset: 10, length: 6 })));
  t.is(bytes.toString(), 'HEAD:abcdef');
  const plain = Buffer.concat(await collect(datasetBytes({ kind: 'file', path, offset: 2, length: 3 })));
  t.is(plain.toString(), '234');
});

test('a file shorter than announced is an error, not a short dataset', async (t) => {
  const path = join(tempDir(), 'short.bin');
  writeFileSync(path, Buffer.from('0123'));
  await t.throwsAsync(collect(datasetBytes({ kind: 'file', path, offset: 0, length: 10 })), { message: /ended 6 bytes early/ });
});
