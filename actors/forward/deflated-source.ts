// A stored Deflated Explicit VR LE instance on its way to a peer that takes another syntax, or to
// any peer with modified attributes: inflated as it streams, its header (the attributes before
// Pixel Data, as routing sees them) rewritten in Explicit VR LE, then converted or deflated again.
// The whole stream is inflated once before anything is sent, so a corrupt instance fails in
// prepare with its reason (a dead letter) instead of half-way through a C-STORE.
import { createReadStream } from 'node:fs';
import type { DatasetSource } from '../../machines/dimse/dimse.events.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { rewriteHeader } from '../../protocol/dataset-rewrite.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN } from '../../protocol/uids.ts';
import { applyModifications } from '../../routing/modifications.ts';
import type { Modification } from '../../routing/rule.types.ts';
import { datasetBytes } from './dataset-stream.ts';
import { inflate } from './deflate-stream.ts';
import type { Part10File } from '../ingest/part10-file.ts';

/** The attributes before Pixel Data are read for a rewrite up to this size (as for other syntaxes). */
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

/** The source for a stored Deflated instance sent as `target` (any syntax canTranscode allows), modified. */
export async function inflatedSource(file: Part10File, target: string, modifications: Modification[]): Promise<DatasetSource> {
  let source: DatasetSource = {
    kind: 'prepared',
    head: new Uint8Array(0),
    path: file.path,
    offset: file.datasetOffset,
    length: file.datasetLength,
    convert: { from: file.transferSyntaxUid, to: target },
  };
  if (modifications.length > 0) {
    const header = await readInflatedHeader(file);
    const { changes } = applyModifications(parseHeader(header, EXPLICIT_VR_LITTLE_ENDIAN).dataset, modifications);
    source = { ...source, head: rewriteHeader(header, EXPLICIT_VR_LITTLE_ENDIAN, changes), skip: header.length };
  }
  await drain(datasetBytes(source));
  return source;
}

/** Runs a stream to its end, keeping nothing: it throws what sending it would throw. */
async function drain(bytes: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of bytes);
}

/** The inflated dataset bytes before top-level Pixel Data (the whole dataset if it has none). */
export async function readInflatedHeader(file: Part10File): Promise<Uint8Array> {
  const walker = new DatasetWalker({ explicitVr: true, littleEndian: true, stopAtPixelData: true });
  const compressed = createReadStream(file.path, { start: file.datasetOffset, end: file.datasetOffset + file.datasetLength - 1 });
  const chunks: Uint8Array[] = [];
  let read = 0;
  // Leaving the loop early ends the inflater and closes the file.
  for await (const chunk of inflate(compressed)) {
    walker.push(chunk);
    chunks.push(chunk);
    read += chunk.length;
    if (walker.pixelDataOffset !== undefined || read >= MAX_HEADER_BYTES) break;
  }
  const end = walker.pixelDataOffset ?? read;
  if (end > MAX_HEADER_BYTES) throw new Error(`attributes before Pixel Data exceed ${MAX_HEADER_BYTES} bytes`);
  return Buffer.concat(chunks).subarray(0, end);
}
