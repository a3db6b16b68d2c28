import { Spool } from '../actors/spool.ts';
import { OutboundQueue, queueItemFor } from '../actors/outbound-queue.ts';
import { crashBody, crashHeader, crashInput } from '../test/actors/fixtures/spool-crash-data.ts';
import { mkdtempSync } from 'node:fs';
const spool = await Spool.open({ dir: mkdtempSync('/tmp/cc-'), journal: process.env.SMALL ? { segmentSize: 256 * 1024, segments: 2 } : undefined });
const queue = OutboundQueue.open(spool);
for (let i = 0; i < 3; i++) {
  const inc = spool.begin(crashHeader(i));
  console.log('begin', i);
  const body = crashBody(i);
  for (let off = 0; off < body.length; off += 16384) if (!inc.write(body.subarray(off, off + 16384))) { console.log('drain'); await inc.drained(); }
  console.log('written', i, body.length);
  await inc.commit(crashInput(i), process.env.Q ? (record) => void queue.enqueue(queueItemFor({ peer: 'PACS', modifications: [] }, 'all', record)) : undefined);
  console.log('ack', i);
}
await spool.close();
