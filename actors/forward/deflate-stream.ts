// Raw Deflate (RFC 1951) as stream stages for Deflated Explicit VR Little Endian (PS3.5 A.5): the
// dataset after the file meta is deflated with no zlib header or trailer. Each stage is an async
// iterable in, an async iterable out, through node:zlib with its own backpressure, so memory is a
// few zlib windows and chunks whatever the instance size.
import { Readable, pipeline } from 'node:stream';
import type { Transform } from 'node:stream';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import type { ZlibOptions } from 'node:zlib';

/** Output chunk size of the zlib stages: each chunk is a trip to the thread pool, and zlib's default 16 KiB
 *  made inflating several times slower (measured: 64 KiB ~2x, 256 KiB ~1x of the best). */
const CHUNK_BYTES = 256 * 1024;

/** A deflated dataset that does not inflate: corrupt, cut short, or not Deflate at all. */
export class DeflateStreamError extends Error {
  /** zlib's code (Z_DATA_ERROR, Z_BUF_ERROR ...). */
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'DeflateStreamError';
    this.code = code;
  }
}

function isZlibError(err: unknown): err is Error & { code: string } {
  const code: unknown = err instanceof Error ? Reflect.get(err, 'code') : undefined;
  return typeof code === 'string' && code.startsWith('Z_');
}

/** Runs `chunks` through a zlib transform; errors of the source pass through unchanged. */
async function* through(chunks: AsyncIterable<Uint8Array>, transform: Transform, describe: (err: Error & { code: string }) => Error): AsyncIterable<Uint8Array> {
  // pipeline() destroys every stage when one fails or the consumer stops early (a return from the for-await).
  const out = pipeline(Readable.from(chunks, { objectMode: false }), transform, () => {});
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw isZlibError(err) ? describe(err) : err;
  }
}

/** Inflates a raw Deflate stream. Bytes after its final block (the even-length pad) are ignored. */
export function inflate(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const inflater = createInflateRaw({ chunkSize: CHUNK_BYTES });
  return through(chunks, inflater, (err) => {
    const what = err.code === 'Z_BUF_ERROR' ? `ends before its final block (${inflater.bytesWritten} compressed bytes)` : `is corrupt: ${err.message}`;
    return new DeflateStreamError(`deflated dataset ${what}`, err.code);
  });
}

export type DeflateOptions = { level?: ZlibOptions['level'] };

/** Deflates a dataset to a raw Deflate stream, padded with one zero byte to an even length (DICOM values and streams are even). */
export async function* deflate(chunks: AsyncIterable<Uint8Array>, opts: DeflateOptions = {}): AsyncIterable<Uint8Array> {
  const deflater = createDeflateRaw({ chunkSize: CHUNK_BYTES, level: opts.level ?? constants.Z_DEFAULT_COMPRESSION });
  let length = 0;
  for await (const chunk of through(chunks, deflater, (err) => new DeflateStreamError(`cannot deflate the dataset: ${err.message}`, err.code))) {
    length += chunk.length;
    yield chunk;
  }
  if (length % 2 === 1) yield new Uint8Array(1);
}

/** Drops the first `count` bytes of a stream. */
export async function* skip(chunks: AsyncIterable<Uint8Array>, count: number): AsyncIterable<Uint8Array> {
  let left = count;
  for await (const chunk of chunks) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
  if (left > 0) throw new Error(`stream ended ${left} bytes before the ${count} to skip`);
}
