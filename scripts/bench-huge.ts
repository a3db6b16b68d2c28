// Memory stays flat whatever the instance size (DESIGN property 2): one instance of `megabytes` MB
// (a 16-bit image whose Pixel Data is written to disk in chunks, never built in memory here either)
// sent by DCMTK storescu to the router, whose peak RSS is printed beside a 4 KB instance's.
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeInstance, SOP, TS } from '../test/helpers/dicom-files.ts';
import { startRouter, tempDir } from '../test/helpers/processes.ts';
import { peakRssMb, sendTo } from './bench-receivers.ts';

const CHUNK = 8 * 1024 * 1024;

/** A Part-10 file of about `megabytes` MB: a small instance whose Pixel Data element is replaced by a large one. */
function writeHugeInstance(dir: string, megabytes: number): string {
  const bytes = megabytes * 1024 * 1024;
  // rows × columns × 2 bytes = bytes: 1024 columns, bytes / 2048 rows.
  const small = makeInstance({ sopClassUid: SOP.secondaryCapture, transferSyntaxUid: TS.explicitLE, pixelBytes: 2048 * 2, studyInstanceUid: '2.25.1', seriesInstanceUid: '2.25.2', instanceNumber: 1 });
  const at = small.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  const head = Buffer.from(small.subarray(0, at));
  // Rows (0028,0010) and Columns (0028,0011) as the large image has them.
  const rows = head.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]));
  const columns = head.indexOf(Buffer.from([0x28, 0x00, 0x11, 0x00, 0x55, 0x53, 0x02, 0x00]));
  head.writeUInt16LE(Math.min(0xffff, bytes / 2048), rows + 8);
  head.writeUInt16LE(1024, columns + 8);
  const element = Buffer.alloc(12);
  element.set([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0]);
  element.writeUInt32LE(bytes, 8);
  const path = join(dir, 'huge.dcm');
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    writeSync(fd, element);
    const chunk = Buffer.alloc(CHUNK, 0x11);
    for (let written = 0; written < bytes; written += CHUNK) writeSync(fd, chunk, 0, Math.min(CHUNK, bytes - written));
  } finally {
    closeSync(fd);
  }
  return path;
}

export async function hugeInstance(megabytes: number, pdu: number): Promise<void> {
  const dir = tempDir('bench-huge-');
  writeHugeInstance(dir, megabytes);
  const router = await startRouter({ listener: { maxPduLength: pdu } });
  try {
    const before = peakRssMb(router.child.pid!);
    const r = await sendTo({ ...router, name: 'router', pid: router.child.pid! }, dir, pdu);
    console.log(`\none instance of ${megabytes} MB: ${(r.bytes / r.seconds / 1e6).toFixed(0)} MB/s; router peak RSS ${r.peakRssMb.toFixed(0)} MB (after start: ${before.toFixed(0)} MB)`);
  } finally {
    await router.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
