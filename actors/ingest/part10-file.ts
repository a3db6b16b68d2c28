// Part-10 files on disk, as the SCU sends them: where the dataset starts and what it is,
// read from the file meta information only (the dataset is streamed later, never loaded).
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseHeader } from '../../protocol/dataset-header.ts';
import type { InstanceKeys } from '../../protocol/dataset-header.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { readPart10Header } from '../../protocol/part10.ts';

export type Part10File = {
  path: string;
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  datasetOffset: number;
  datasetLength: number;
  /** The whole file, when the spool still holds it in memory (written after its acknowledgement). */
  bytes?: Uint8Array;
};

/** File meta groups are small; this bounds what we read to find the dataset. */
const META_READ_BYTES = 64 * 1024;
/** The attributes before Pixel Data are read for routing up to this size. */
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

export async function readPart10File(path: string): Promise<Part10File> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.min(size, META_READ_BYTES));
    await handle.read(buffer, 0, buffer.length, 0);
    return described(path, buffer, size);
  } finally {
    await handle.close();
  }
}

/** The same, for a file the spool still holds in memory. */
export function part10FileInMemory(path: string, bytes: Uint8Array): Part10File {
  return { ...described(path, bytes.subarray(0, META_READ_BYTES), bytes.length), bytes };
}

/** A Part-10 file of `size` bytes, from its first bytes (the meta group). */
function described(path: string, head: Uint8Array, size: number): Part10File {
  const { meta, datasetOffset } = readPart10Header(head);
  return {
    path,
    sopClassUid: meta.sopClassUid,
    sopInstanceUid: meta.sopInstanceUid,
    transferSyntaxUid: meta.transferSyntaxUid,
    datasetOffset,
    datasetLength: size - datasetOffset,
  };
}

/** Files named on the command line, folders walked recursively, in a stable order. */
export async function collectFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p);
    if (s.isDirectory()) {
      const entries = (await readdir(p)).sort();
      out.push(...(await collectFiles(entries.map((e) => join(p, e)))));
    } else if (s.isFile()) {
      out.push(p);
    }
  }
  return out;
}

/** The dataset bytes before top-level Pixel Data (the whole dataset if it has none), read from disk. */
export async function readDatasetHeader(file: Part10File): Promise<Uint8Array> {
  const walker = DatasetWalker.forSyntax(file.transferSyntaxUid, { stopAtPixelData: true });
  if (file.bytes) {
    const dataset = file.bytes.subarray(file.datasetOffset);
    walker.push(dataset);
    const end = walker.pixelDataOffset ?? dataset.length;
    if (end > MAX_HEADER_BYTES) throw new Error(`attributes before Pixel Data exceed ${MAX_HEADER_BYTES} bytes`);
    return dataset.subarray(0, end);
  }
  const handle = await open(file.path, 'r');
  try {
    const chunks: Buffer[] = [];
    let read = 0;
    while (read < file.datasetLength && walker.pixelDataOffset === undefined && read < MAX_HEADER_BYTES) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, file.datasetLength - read));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, file.datasetOffset + read);
      if (bytesRead === 0) break;
      walker.push(chunk.subarray(0, bytesRead));
      chunks.push(chunk.subarray(0, bytesRead));
      read += bytesRead;
    }
    const all = Buffer.concat(chunks);
    const end = walker.pixelDataOffset ?? all.length;
    if (end > MAX_HEADER_BYTES) throw new Error(`attributes before Pixel Data exceed ${MAX_HEADER_BYTES} bytes`);
    return all.subarray(0, end);
  } finally {
    await handle.close();
  }
}

/** The instance's keys and attributes (everything before Pixel Data), as routing sees them. */
export async function readHeaderKeys(file: Part10File): Promise<InstanceKeys> {
  return parseHeader(await readDatasetHeader(file), file.transferSyntaxUid);
}
