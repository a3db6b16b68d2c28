// Part-10 files on disk, as the SCU sends them: where the dataset starts and what it is,
// read from the file meta information only (the dataset is streamed later, never loaded).
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readPart10Header } from '../protocol/part10.ts';

export type Part10File = {
  path: string;
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  datasetOffset: number;
  datasetLength: number;
};

/** File meta groups are small; this bounds what we read to find the dataset. */
const META_READ_BYTES = 64 * 1024;

export async function readPart10File(path: string): Promise<Part10File> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.min(size, META_READ_BYTES));
    await handle.read(buffer, 0, buffer.length, 0);
    const { meta, datasetOffset } = readPart10Header(buffer);
    return {
      path,
      sopClassUid: meta.sopClassUid,
      sopInstanceUid: meta.sopInstanceUid,
      transferSyntaxUid: meta.transferSyntaxUid,
      datasetOffset,
      datasetLength: size - datasetOffset,
    };
  } finally {
    await handle.close();
  }
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
