// `router queue retry` of many items over several peers: a plain line per peer in a pipe, one line
// counting up on a terminal (like `router send`), and the total either way.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { OutboundQueue } from '../../actors/forward/outbound-queue.ts';
import { Spool } from '../../actors/ingest/spool.ts';
import { newUid, SOP, TS } from '../helpers/dicom-files.ts';
import { REPO, run, tempDir } from '../helpers/processes.ts';

const COUNTS = { ARCHIVE: 1200, PACS: 300 };

async function queued() {
  const dir = tempDir();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  const config = join(dir, 'router.yaml');
  const peers = Object.keys(COUNTS).map((name) => ({ name, aeTitle: name, host: '127.0.0.1', port: 1 }));
  writeFileSync(config, stringify({ storage: { dir: join(dir, 'data') }, listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112 }], peers, routing: { rulesDir } }));
  const spool = await Spool.open({ dir: join(dir, 'data'), fsync: false, logger: pino({ level: 'silent' }) });
  const queue = OutboundQueue.open(spool);
  const study = newUid();
  const series = newUid();
  for (const [peer, n] of Object.entries(COUNTS)) {
    for (let i = 0; i < n; i++) {
      const item = await queue.add({
        peer, sopInstanceUid: newUid(), seriesInstanceUid: series, studyInstanceUid: study, sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE,
        path: `x/${i}.dcm`, modifications: [], rule: 'all',
      });
      // Half of them dead letters: retry makes every one due again.
      if (i % 2 === 0) await queue.failed(item.id, { retryable: false, error: 'A900', policy: { attempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000, jitter: 0 } });
    }
  }
  await spool.close();
  return { config, dataDir: join(dir, 'data') };
}

const cli = (...args: string[]) => run(process.execPath, [join(REPO, 'scripts/router.ts'), ...args]);

test('in a pipe: a line per peer, then the total; every item is due again', async (t) => {
  const q = await queued();
  const r = await cli('queue', 'retry', '--all', '--config', q.config);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['ARCHIVE: 1200 items due now', 'PACS: 300 items due now', '1500 items due now']);
  const spool = await Spool.open({ dir: q.dataDir, fsync: false, verify: false, logger: pino({ level: 'silent' }) });
  t.teardown(() => spool.close());
  const queue = OutboundQueue.open(spool);
  t.deepEqual(queue.depth('ARCHIVE'), { pending: 1200, dead: 0 });
  t.deepEqual(queue.depth('PACS'), { pending: 300, dead: 0 });
});

test('one target prints the count alone; no target and no --all is an error', async (t) => {
  const q = await queued();
  const one = await cli('queue', 'retry', 'PACS', '--config', q.config);
  t.is(one.stdout, '300 items due now\n');
  const none = await cli('queue', 'retry', '--config', q.config);
  t.is(none.code, 1);
  t.regex(none.stderr, /name a peer or an item id, or use --all/);
});

test('on a terminal: one line that counts up per peer, cleared, then the total', async (t) => {
  const q = await queued();
  // script(1) gives the command a pseudo-terminal as its stdout.
  const command = [process.execPath, join(REPO, 'scripts/router.ts'), 'queue', 'retry', 'ARCHIVE', 'PACS', '--config', q.config].map((a) => `'${a}'`).join(' ');
  const r = await run('script', ['-qec', command, '/dev/null']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.true(r.stdout.includes('\r\x1b[K1/2 (1200 items due now)'), JSON.stringify(r.stdout));
  t.true(r.stdout.includes('\r\x1b[K2/2 (1500 items due now)'));
  t.regex(r.stdout, /\r\x1b\[K1500 items due now\r?\n$/);
  t.notRegex(r.stdout, /ARCHIVE: 1200/);
});
