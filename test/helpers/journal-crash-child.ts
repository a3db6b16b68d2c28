// A spool in a child process for the journal's crash tests (test/actors/ingest/journal-crash.test.ts).
// It prints STARTING, opens the spool in JOURNAL_DIR with small segments (replay), prints OPEN, then stores COUNT instances
// (deterministic bytes, each queued to peer PACS in its own commit) and prints "ACK <uid>" once each
// commit resolved, as a C-STORE-RSP would be sent. CRASH picks where it kills itself with SIGKILL:
//   after-flush:N   right after the N-th journal fdatasync, before the group's index transaction
//   header:N        right after the N-th segment header write (a segment being recycled)
//   checkpoint:N    in the N-th checkpoint, before its file is replaced
//   after-ack:N     right after the N-th "ACK" line (instances held in memory: their files not written yet)
//   none
import { existsSync, fdatasync, writeSync } from 'node:fs';
import { Spool } from '../../actors/ingest/spool.ts';
import { OutboundQueue, queueItemFor } from '../../actors/forward/outbound-queue.ts';
import { SEGMENT_HEADER_SIZE } from '../../actors/ingest/journal-format.ts';
import { crashBody, crashHeader, crashInput, crashUid } from '../actors/ingest/fixtures/spool-crash-data.ts';

const [kind, nth] = (process.env.CRASH ?? 'none').split(':');
const at = Number(nth ?? 0);
const counts = { 'after-flush': 0, header: 0, checkpoint: 0, 'after-ack': 0 } as Record<string, number>;
const die = (step: string): void => {
  if (kind === step && ++counts[step] === at) process.kill(process.pid, 'SIGKILL');
};

console.log('STARTING'); // the spool opens: replay runs now
const spool = await Spool.open({
  dir: process.env.JOURNAL_DIR!,
  journal: {
    segmentSize: Number(process.env.SEGMENT ?? 256 * 1024),
    segments: 2,
    io: {
      datasync: (fd) =>
        new Promise((resolve, reject) =>
          fdatasync(fd, (err) => {
            if (err) return reject(err);
            die('after-flush');
            resolve();
          }),
        ),
      writeSync: (fd, data, position) => {
        writeSync(fd, data, 0, data.byteLength, position);
        if (position === 0 && data.byteLength === SEGMENT_HEADER_SIZE) die('header');
      },
      writeCheckpoint: async (file, data) => {
        die('checkpoint');
        const { realJournalIo } = await import('../../actors/ingest/journal-segments.ts');
        await realJournalIo.writeCheckpoint(file, data);
      },
    },
  },
});
const queue = OutboundQueue.open(spool);
console.log(`OPEN ${spool.count()}`);
const count = Number(process.env.COUNT ?? 100);
const parallel = Number(process.env.PARALLEL ?? 4);
let next = 0;
const acked: string[] = [];
await Promise.all(
  Array.from({ length: parallel }, async () => {
    while (next < count) {
      const i = next++;
      const incoming = spool.begin(crashHeader(i));
      const body = crashBody(i);
      for (let off = 0; off < body.length; off += 16384) {
        if (!incoming.write(body.subarray(off, off + 16384))) await incoming.drained();
      }
      await incoming.commit(crashInput(i), (record) => void queue.enqueue(queueItemFor({ peer: 'PACS', modifications: [] }, 'all', record)));
      console.log(`ACK ${crashUid(i)}`);
      if (kind === 'after-ack' && counts['after-ack'] + 1 === at) {
        // Before dying: which acknowledged instances have no file yet (the test checks replay writes them).
        const missing = [...acked, crashUid(i)].filter((uid) => {
          const path = spool.get(uid)?.path;
          return path !== undefined && !existsSync(`${process.env.JOURNAL_DIR}/${path}`);
        });
        console.log(`NOFILE ${missing.join(' ')}`);
      }
      acked.push(crashUid(i));
      die('after-ack');
    }
  }),
);
await spool.close();
console.log('DONE');
