// A small dataset (a Q/R identifier, a response's identifier, a Storage Commitment Action or Event
// Information) gathered in memory and handed over whole when its last fragment has come. Past its
// limit it is drained, not held, and the receiver answers with a status (bad input harms nothing).
import type { DatasetSink } from './association.ts';

/** How large a dataset may grow, and what happens at its end when it grew past that instead of `done`. */
export type CollectLimit = { maxBytes: number; exceeded(size: number): void };

/** `done(dataset)` at the end, with the whole dataset; with a `limit`, a larger one is dropped as it comes. */
export function collectingSink(done: (dataset: Uint8Array) => void, limit?: CollectLimit): DatasetSink {
  let chunks: Uint8Array[] | undefined = [];
  let size = 0;
  return {
    write: (data) => {
      size += data.length;
      if (limit && size > limit.maxBytes) chunks = undefined;
      else chunks?.push(Uint8Array.from(data));
      return true;
    },
    drained: () => Promise.resolve(),
    end: () => (chunks ? done(Buffer.concat(chunks)) : limit?.exceeded(size)),
  };
}
