// Faults at the edges: peers that cut, reset or go silent mid-transfer, datasets that lie, a full
// disk, and patient-identifying values kept out of the logs.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { makeInstance, SOP, TS } from '../../helpers/dicom-files.ts';
import { eventually, routerWith, send, storeFile } from '../../helpers/in-process-router.ts';
import { tempDir } from '../../helpers/processes.ts';
import { scriptedScp } from '../../helpers/scripted-scp.ts';

const QUICK = { attempts: 10, initialBackoffSeconds: 0.05, maxBackoffSeconds: 0.2, jitter: 0 };
const FORWARD_ALL = (peer: string) => `rules:\n  - name: all\n    then: { forward: [${peer}] }\n`;

for (const fault of ['close', 'reset'] as const) {
  test(`a peer that ${fault === 'close' ? 'closes the connection' : 'resets the connection'} mid-transfer: retried, delivered once it behaves`, async (t) => {
    const scp = await scriptedScp({ fault: (n) => (n === 2 ? fault : undefined) });
    t.teardown(scp.close);
    const r = await routerWith([{ aeTitle: 'FLAKY', host: '127.0.0.1', port: scp.port, retry: QUICK }], FORWARD_ALL('FLAKY'));
    t.teardown(() => r.stop(0));
    // 64 KiB of pixels: several fragments, so the fault lands inside the dataset.
    const [uid] = await send(r.port, r.dir, [{ pixelBytes: 65536 }]);
    await eventually(t, 'delivered after the fault', () => r.queue.outstanding(uid) === 0);
    const complete = scp.stores.filter((s) => s.command.AffectedSOPInstanceUID === uid);
    t.is(complete.length, 1, 'one complete delivery');
    t.is(r.queue.deliveries(uid).length, 1);
  });
}

test('a peer that never answers a C-STORE is timed out and retried; another peer is not held up meanwhile', async (t) => {
  const mute = await scriptedScp({ fault: (n) => (n === 1 ? 'silent' : undefined) });
  const fine = await scriptedScp();
  t.teardown(mute.close);
  t.teardown(fine.close);
  const r = await routerWith(
    [
      { aeTitle: 'MUTE', host: '127.0.0.1', port: mute.port, retry: QUICK, timeouts: { connectSeconds: 5, dimseSeconds: 2 } },
      { aeTitle: 'FINE', host: '127.0.0.1', port: fine.port, retry: QUICK },
    ],
    'rules:\n  - name: both\n    then: { forward: [MUTE, FINE] }\n',
  );
  t.teardown(() => r.stop(0));
  const [uid] = await send(r.port, r.dir, [{}]);
  await eventually(t, 'FINE has it', () => fine.stores.length === 1);
  const muteItem = () => r.queue.list('MUTE').find((i) => i.sopInstanceUid === uid);
  t.is(muteItem()?.attempts, 0, 'FINE was served while MUTE still owed its first answer');
  await eventually(t, 'MUTE has it after a timeout and a retry', () => r.queue.outstanding(uid) === 0);
  t.is(mute.stores.length, 2, 'sent twice: the unanswered one, then the retry');
});

test('datasets that lie: a length past the end, an undefined-length sequence never closed: C000, nothing indexed', async (t) => {
  const r = await routerWith([], 'rules: []\n');
  t.teardown(() => r.stop(0));
  const good = makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 2048 });
  // Pixel Data (7FE0,0010) OW: its 4-byte length sits 8 bytes after the tag; claim more than is there.
  const pixelTag = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]);
  const at = good.lastIndexOf(pixelTag);
  const longer = Buffer.from(good);
  longer.writeUInt32LE(good.readUInt32LE(at + 8) + 1000, at + 8);
  const pastEnd = join(r.dir, 'past-end.dcm');
  writeFileSync(pastEnd, longer);
  const a = await storeFile(r.port, pastEnd, 'LIAR');
  t.is(a.status, 0xc000);
  t.regex(a.errorComment ?? '', /incomplete/);

  // Cut inside an undefined-length sequence (before any Pixel Data): the sequence is never closed.
  const sq = Buffer.from([0x08, 0x00, 0x10, 0x11, 0x53, 0x51]); // (0008,1110) SQ, undefined length in the generator's data
  const cut = good.indexOf(sq);
  t.true(cut > 0, 'the test data has an undefined-length sequence');
  const unclosed = join(r.dir, 'unclosed.dcm');
  writeFileSync(unclosed, good.subarray(0, cut + 30));
  const b = await storeFile(r.port, unclosed, 'LIAR');
  t.is(b.status, 0xc000);
  t.is(r.spool.count(), 0);
});

/** Writes `file` until the file system has no room left. */
function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(256 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

test('disk full: C-STORE answers A700, nothing partial is indexed, storage resumes when space returns', async (t) => {
  const mount = tempDir('tmpfs-');
  // A real, small file system (the tests run as root, as CI does).
  // Room for the journal's preallocated segments; then whatever is left is filled up.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mount]);
  t.teardown(() => execFileSync('umount', ['-l', mount]));
  const r = await routerWith([], 'rules: []\n', { storageDir: join(mount, 'spool') });
  t.teardown(() => r.stop(0));
  const filler = join(mount, 'filler');
  fillUp(filler);
  const big = await t.throwsAsync(send(r.port, r.dir, [{ pixelBytes: 1024 * 1024 }]));
  t.regex(big!.message, /router answered 42752 Out of resources: spool disk full/);
  t.is(r.spool.count(), 0);
  rmSync(filler);
  const [uid] = await send(r.port, r.dir, [{ pixelBytes: 1024 * 1024 }]);
  t.truthy(r.spool.get(uid), 'stored once space returned, without a restart');
});

test('patient-identifying values stay out of the logs at info level and above', async (t) => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const scp = await scriptedScp();
  t.teardown(scp.close);
  const r = await routerWith([{ aeTitle: 'DEST', host: '127.0.0.1', port: scp.port, retry: QUICK }], FORWARD_ALL('DEST'), { logger });
  t.teardown(() => r.stop(0));
  const [uid] = await send(r.port, r.dir, [{ patientId: 'PHI-ID-4711', patientName: 'Doe^Jane', accessionNumber: 'ACC-99887' }]);
  await eventually(t, 'delivered', () => r.queue.outstanding(uid) === 0);
  const log = lines.join('');
  t.true(log.includes(uid), 'the log follows the instance by its UID');
  for (const phi of ['PHI-ID-4711', 'Doe^Jane', 'Doe', 'ACC-99887']) t.false(log.includes(phi), `${phi} appears in the log`);
});

