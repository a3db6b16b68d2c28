import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FileSyncs, SYNCFS_AVERAGE_MAX, SYNCFS_FROM, syncFileSystem } from '../../../actors/ingest/file-syncs.ts';
import { tempDir } from '../../helpers/processes.ts';

function spoolWith(n: number): { dir: string; files: string[] } {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'instances', 's'), { recursive: true });
  const files = Array.from({ length: n }, (_, i) => `instances/s/f${i}.dcm`);
  for (const f of files) writeFileSync(path.join(dir, f), Buffer.alloc(4096, 1));
  return { dir, files };
}

test('a few files are fsynced one by one; a checkpoint after a burst of small ones makes one syncfs of the spool file system; large ones keep their fsyncs', async (t) => {
  const { dir, files } = spoolWith(SYNCFS_FROM + 10);
  const calls: string[] = [];
  const syncs = new FileSyncs(dir, async (d) => {
    calls.push(d);
    await syncFileSystem(d);
  });
  files.slice(0, 3).forEach((f, i) => syncs.add(i, f, 4096));
  t.is(await syncs.syncBefore(100), 3);
  t.deepEqual(calls, [], 'three files: fsync each, no syncfs');
  files.slice(3).forEach((f, i) => syncs.add(200 + i, f, 4096));
  t.is(await syncs.syncBefore(200 + files.length), files.length - 3);
  t.deepEqual(calls, [dir], 'a burst: one syncfs of the spool');
  t.is(await syncs.syncBefore(10_000), 0, 'nothing left');
  // As many large files (a CT series): fsync each; their bytes are their cost, and one syncfs of them all
  // would stall the acknowledgements' fdatasync longer.
  files.forEach((f, i) => syncs.add(20_000 + i, f, SYNCFS_AVERAGE_MAX + 1));
  t.is(await syncs.syncBefore(30_000), files.length);
  t.deepEqual(calls, [dir], 'no second syncfs');
});

test('a failed syncfs keeps the files for the next checkpoint and says why', async (t) => {
  const { dir, files } = spoolWith(SYNCFS_FROM);
  let fail = true;
  const syncs = new FileSyncs(dir, async (d) => {
    if (fail) throw Object.assign(new Error('syncfs: Input/output error'), { code: 'EIO' });
    await syncFileSystem(d);
  });
  files.forEach((f, i) => syncs.add(i, f, 4096));
  await t.throwsAsync(syncs.syncBefore(files.length), { message: /Input\/output error/ });
  fail = false;
  t.is(await syncs.syncBefore(files.length), files.length, 'retried in full');
});

test('the real syncfs: succeeds on the spool, and a missing folder is an error, not a silent success', async (t) => {
  const { dir } = spoolWith(1);
  await t.notThrowsAsync(syncFileSystem(dir));
  await t.throwsAsync(syncFileSystem(path.join(dir, 'no-such-folder')), { message: /syncfs .*no-such-folder/ });
});
