// The instance directory follows the spool: what this node stores is published, what retention removes
// leaves the directory at the next pass (not only at the next start's rewrite).
import test from 'ava';
import pg from 'pg';
import { pino } from 'pino';
import { InstanceDirectory } from '../../actors/cluster/instance-directory.ts';
import { migrate } from '../../actors/cluster/migrate.ts';
import { Spool } from '../../actors/ingest/spool.ts';
import { DomainEvents } from '../../actors/observe/domain-events.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/processes.ts';

function header(tag: string): Buffer {
  const h = Buffer.alloc(132 + 32);
  h.write('DICM', 128, 'latin1');
  h.write(tag.slice(0, 32), 132, 'latin1');
  return h;
}

async function store(spool: Spool, uid: string): Promise<void> {
  const incoming = spool.begin(header(uid));
  incoming.write(Buffer.alloc(2048, 7));
  await incoming.commit({
    sopInstanceUid: uid, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4',
    patientId: 'PID1', patientName: 'DOE^JANE', modality: 'CT', callingAeTitle: 'CT1', calledAeTitle: 'ROUTER', transferSyntaxUid: '1.2.840.10008.1.2.1',
    listener: 'main', remoteAddress: '127.0.0.1', receivedAt: new Date().toISOString(),
  });
}

test('an instance retention removes leaves the directory at the next outbox pass', async (t) => {
  const server = await startPostgres();
  t.teardown(server.stop);
  const pool = new pg.Pool({ connectionString: server.url });
  t.teardown(() => pool.end());
  await migrate(pool, { node: 'n1' });
  const spool = await Spool.open({ dir: tempDir(), logger: pino({ level: 'silent' }) });
  t.teardown(() => spool.close());
  const directory = new InstanceDirectory({ pool, node: 'n1', spool, logger: pino({ level: 'silent' }) });
  let kicks = 0;
  const events = new DomainEvents();
  const following = directory.follow(events, () => kicks++);
  t.teardown(() => following.unsubscribe());
  await store(spool, '1.9.1');
  await store(spool, '1.9.2');
  await directory.publish(['1.9.1', '1.9.2']);
  const listed = async () => (await pool.query<{ sop_uid: string }>('SELECT sop_uid FROM instances WHERE node = $1 ORDER BY sop_uid', ['n1'])).rows.map((r) => r.sop_uid);
  t.deepEqual(await listed(), ['1.9.1', '1.9.2']);
  t.true(await spool.remove('1.9.1'));
  t.is(kicks, 1, 'the removal asks the outbox for a pass');
  const pass = directory.take();
  t.deepEqual(pass, ['1.9.1']);
  await directory.publish(pass);
  t.deepEqual(await listed(), ['1.9.2'], 'gone from the directory too');
  following.unsubscribe();
  t.true(await spool.remove('1.9.2'));
  t.deepEqual(directory.take(), [], 'unsubscribed: the spool hook is gone with it');
});
