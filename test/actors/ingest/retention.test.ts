import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { OutboundQueue } from '../../../actors/forward/outbound-queue.ts';
import { sweepSpool } from '../../../actors/ingest/retention.ts';
import { Spool } from '../../../actors/ingest/spool.ts';
import { tempDir } from '../../helpers/processes.ts';

const silent = pino({ level: 'silent' });
const HOUR = 3600_000;

async function store(spool: Spool, queue: OutboundQueue, sop: string, peers: string[]) {
  const incoming = spool.begin(Buffer.from('header'));
  incoming.write(Buffer.from('dataset'));
  const record = await incoming.commit(
    {
      sopInstanceUid: sop, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', patientId: 'P',
      transferSyntaxUid: '1.2.840.10008.1.2.1', callingAeTitle: 'A', calledAeTitle: 'B', listener: 'main', remoteAddress: '127.0.0.1',
      receivedAt: new Date().toISOString(),
    },
    (record) => {
      for (const peer of peers) {
        queue.enqueue({ peer, sopInstanceUid: sop, seriesInstanceUid: '1.2.3.4', studyInstanceUid: '1.2.3', sopClassUid: record.sopClassUid, transferSyntaxUid: record.transferSyntaxUid, path: record.path, modifications: [], rule: 'r' });
      }
    },
  );
  await spool.whenWritten(record.path); // held in memory at first: its file follows the commit
  return record;
}

test('a file stays while any destination has not confirmed it, and for the keep period after the last confirmation', async (t) => {
  const spool = await Spool.open({ dir: tempDir(), logger: silent });
  t.teardown(() => spool.close());
  const queue = OutboundQueue.open(spool);
  const rec = await store(spool, queue, '1.2.3.4.5', ['A', 'B']);
  const file = join(spool.dir, rec.path);
  const later = Date.now() + 48 * HOUR;
  t.deepEqual(await sweepSpool(spool, queue, 24 * HOUR, silent, later), { removed: 0, kept: 1 }, 'nobody confirmed yet');
  const [a, b] = queue.list();
  await queue.delivered(a.id, { status: 0 });
  t.is((await sweepSpool(spool, queue, 24 * HOUR, silent, later)).removed, 0, 'B has not confirmed');
  await queue.failed(b.id, { error: 'C000', retryable: false, policy: { attempts: 1, initialBackoffMs: 1, maxBackoffMs: 1, jitter: 0 } });
  t.is((await sweepSpool(spool, queue, 24 * HOUR, silent, later)).removed, 0, 'a dead letter still refers to it');
  await queue.purge(b.id);
  t.is((await sweepSpool(spool, queue, 24 * HOUR, silent, Date.now() + HOUR)).removed, 0, 'within the keep period');
  t.true(existsSync(file));
  t.deepEqual(await sweepSpool(spool, queue, 24 * HOUR, silent, later), { removed: 1, kept: 0 });
  t.false(existsSync(file));
  t.is(spool.get('1.2.3.4.5'), undefined);
});

test('an instance no rule forwarded is kept for the keep period after receipt', async (t) => {
  const spool = await Spool.open({ dir: tempDir(), logger: silent });
  t.teardown(() => spool.close());
  const queue = OutboundQueue.open(spool);
  await store(spool, queue, '1.2.3.9', []);
  t.is((await sweepSpool(spool, queue, 24 * HOUR, silent, Date.now() + HOUR)).removed, 0);
  t.is((await sweepSpool(spool, queue, 24 * HOUR, silent, Date.now() + 25 * HOUR)).removed, 1);
});
