import { Spool } from '../actors/spool.ts';
import { crashBody, crashHeader, crashInput } from '../test/actors/fixtures/spool-crash-data.ts';
import { mkdtempSync, fdatasync, writeSync } from 'node:fs';
const which = process.env.W ?? '';
const io: any = {};
if (which.includes('d')) io.datasync = (fd: number) => new Promise<void>((res, rej) => fdatasync(fd, (e) => e ? rej(e) : res()));
if (which.includes('w')) io.writeSync = (fd: number, data: Uint8Array, position: number) => { writeSync(fd, data, 0, data.byteLength, position); };
console.log('opening');
const spool = await Spool.open({ dir: mkdtempSync('/tmp/cc-'), journal: { segmentSize: 256 * 1024, segments: 2, io } });
console.log('opened');
for (let i = 0; i < 3; i++) {
  const inc = spool.begin(crashHeader(i));
  const body = crashBody(i);
  for (let off = 0; off < body.length; off += 16384) if (!inc.write(body.subarray(off, off + 16384))) await inc.drained();
  await inc.commit(crashInput(i));
  console.log('ack', i);
}
await spool.close();
