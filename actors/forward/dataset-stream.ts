// Datasets on their way out: the bytes of a stored instance, optionally with a rewritten header
// (modified attributes) and converted to another transfer syntax, cut into PDV payloads no larger
// than the peer accepts. Everything streams from disk; nothing holds an instance whole.
//
// A conversion is a chain of stages: inflate (stored Deflated), the native converter (ILE/ELE/EBE),
// deflate (Deflated out). A Deflated file cannot be entered mid-stream, so a replacement header for
// it is in Explicit VR LE and replaces the first `skip` inflated bytes.
import { createReadStream } from 'node:fs';
import type { DatasetSource } from '../../machines/dimse/dimse.events.ts';
import { inflatedSyntax, isDeflated } from '../../protocol/deflated.ts';
import { TransferSyntaxConverter } from '../../protocol/ts-convert.ts';
import { deflate, inflate, skip } from './deflate-stream.ts';

/** The dataset's bytes in order: the replacement header (if any), then the file region. */
export async function* datasetBytes(source: DatasetSource): AsyncIterable<Uint8Array> {
  if (source.kind === 'bytes') {
    yield source.data;
    return;
  }
  if (source.kind === 'file' || !source.convert) {
    yield* withHead(source, fileBytes(source));
    return;
  }
  const { from, to } = source.convert;
  let bytes = isDeflated(from) ? withHead(source, skip(inflate(fileBytes(source)), source.skip ?? 0)) : withHead(source, fileBytes(source));
  if (inflatedSyntax(from) !== inflatedSyntax(to)) bytes = converted(bytes, inflatedSyntax(from), inflatedSyntax(to));
  if (isDeflated(to)) bytes = deflate(bytes);
  yield* bytes;
}

async function* converted(bytes: AsyncIterable<Uint8Array>, from: string, to: string): AsyncIterable<Uint8Array> {
  const converter = new TransferSyntaxConverter(from, to);
  for await (const chunk of bytes) yield* converter.push(chunk);
  yield* converter.end();
}

async function* withHead(source: Exclude<DatasetSource, { kind: 'bytes' }>, rest: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  if (source.kind === 'prepared' && source.head.length > 0) yield source.head;
  yield* rest;
}

async function* fileBytes(source: Exclude<DatasetSource, { kind: 'bytes' }>): AsyncIterable<Uint8Array> {
  if (source.length === 0) return;
  if (source.bytes) {
    yield source.bytes.subarray(source.offset, source.offset + source.length);
    return;
  }
  const stream = createReadStream(source.path, { start: source.offset, end: source.offset + source.length - 1, highWaterMark: 256 * 1024 });
  let seen = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    seen += chunk.length;
    yield chunk;
  }
  if (seen !== source.length) throw new Error(`${source.path} ended ${source.length - seen} bytes early`);
}

/** Re-cuts a byte stream into payloads of exactly `max` bytes (the last may be shorter), flagging the last. */
export async function* pdvPayloads(bytes: AsyncIterable<Uint8Array>, max: number): AsyncIterable<{ data: Uint8Array; isLast: boolean }> {
  let pending: Uint8Array[] = [];
  let pendingLength = 0;
  let ready: Uint8Array | undefined; // one payload held back until we know whether another follows
  const take = (n: number): Uint8Array => {
    if (pending[0].length >= n) {
      const out = pending[0].subarray(0, n);
      pending[0] = pending[0].subarray(n);
      if (pending[0].length === 0) pending.shift();
      pendingLength -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = pending[0];
      const k = Math.min(head.length, n - filled);
      out.set(head.subarray(0, k), filled);
      filled += k;
      if (k === head.length) pending.shift();
      else pending[0] = head.subarray(k);
    }
    pendingLength -= n;
    return out;
  };
  for await (const chunk of bytes) {
    if (chunk.length === 0) continue;
    pending.push(chunk);
    pendingLength += chunk.length;
    while (pendingLength > max) {
      if (ready) yield { data: ready, isLast: false };
      ready = take(max);
    }
  }
  if (pendingLength > 0) {
    if (ready) yield { data: ready, isLast: false };
    ready = take(pendingLength);
  }
  pending = [];
  yield { data: ready ?? new Uint8Array(0), isLast: true };
}
