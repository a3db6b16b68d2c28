import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Spool, SpoolError } from '../../../actors/ingest/spool.ts';
import type { CommitInput, IncomingInstance, SpoolFsOps } from '../../../actors/ingest/spool.ts';
import { crashBody, crashHeader, crashUid } from './fixtures/spool-crash-data.ts';

const FRAGMENT = 16 * 1024;

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'spool-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function input(uid: string, over: Partial<CommitInput> = {}): CommitInput {
  return {
    sopInstanceUid: uid,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    studyInstanceUid: '1.2.3',
    seriesInstanceUid: '1.2.3.4',
    patientId: 'PID1',
    patientName: 'DOE^JANE',
    modality: 'CT',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    callingAeTitle: 'MODALITY',
    calledAeTitle: 'ROUTER',
    listener: 'main',
    remoteAddress: '127.0.0.1',
    receivedAt: '2024-01-02T03:04:05.000Z',
    ...over,
  };
}

function header(tag: string): Buffer {
  const h = Buffer.alloc(132 + 32);
  h.write('DICM', 128, 'latin1');
  h.write(tag.slice(0, 32), 132, 'latin1');
  return h;
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed * 13) & 0xff;
  return b;
}

/** Write `data` in fragments, honouring backpressure; returns how often write() said "pause". */
async function writeAll(incoming: IncomingInstance, data: Uint8Array, fragment = FRAGMENT): Promise<number> {
  let pauses = 0;
  for (let at = 0; at < data.length; at += fragment) {
    if (!incoming.write(data.subarray(at, at + fragment))) {
      pauses++;
      await incoming.drained();
    }
  }
  return pauses;
}

/** Store one instance; resolves once its file is written too (an instance held in memory gets it after its commit). */
async function store(spool: Spool, uid: string, body: Buffer, over: Partial<CommitInput> = {}) {
  const incoming = spool.begin(header(uid));
  await writeAll(incoming, body);
  const record = await incoming.commit(input(uid, over));
  // A file write that failed (a full disk) is retried by a timer that holds no process open (a router
  // stopping does not wait for it; its listeners hold it open meanwhile); this test process holds itself.
  const keepAlive = setInterval(() => {}, 100);
  await spool.whenWritten(record.path).finally(() => clearInterval(keepAlive));
  return record;
}

/** Byte comparison without ava's deep diff (which is very slow on megabytes). */
async function assertFileBytes(t: ExecutionContext, file: string, expected: Uint8Array): Promise<void> {
  const actual = await fsp.readFile(file);
  t.is(actual.length, expected.length, `${file} size`);
  t.true(actual.equals(expected), `${file} bytes`);
}

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

for (const [mode, memoryLimit] of [['held in memory, its file written after the commit', undefined], ['streamed to a temp file', 0]] as const) {
test(`fragments are committed to a file at its path, byte-identical, indexed, and survive reopen (${mode})`, async (t) => {
  const dir = tempDir(t);
  let spool = await Spool.open({ dir, memoryLimit });
  const body = pattern(300_000, 1);
  const incoming = spool.begin(header('one'));
  await writeAll(incoming, body, 16_000);
  t.is(incoming.bytesWritten, 164 + 300_000);
  const record = await incoming.commit(input('1.2.3.4.5'));
  t.is(record.path, path.join('instances', '1.2.3', '1.2.3.4', '1.2.3.4.5.dcm'));
  t.is(record.size, 164 + 300_000);
  t.is(incoming.state, 'committed');
  const held = spool.heldFile(record.path);
  if (held) t.true(Buffer.from(held).equals(Buffer.concat([header('one'), body])), 'the bytes held until the file is written');
  if (memoryLimit === 0) t.is(held, undefined, 'a streamed instance is never held');
  await spool.whenWritten(record.path);
  t.is(spool.heldFile(record.path), undefined, 'nothing held once written');
  await assertFileBytes(t, path.join(dir, record.path), Buffer.concat([header('one'), body]));
  t.deepEqual(spool.get('1.2.3.4.5'), record);
  t.is(spool.count(), 1);
  t.deepEqual(await filesUnder(path.join(dir, 'incoming')), []);
  await spool.close();

  spool = await Spool.open({ dir });
  t.deepEqual(spool.get('1.2.3.4.5'), record);
  t.deepEqual(spool.list(), [record]);
  t.like(spool.startup, { tempFilesRemoved: 0, checked: 1, missing: 0, sizeMismatch: 0 });
  await spool.close();
});
}

test('discard leaves nothing; a discarded instance can be neither written nor committed', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const incoming = spool.begin(header('gone'));
  await writeAll(incoming, pattern(100_000, 2));
  await incoming.discard();
  t.is(incoming.state, 'discarded');
  t.throws(() => incoming.write(new Uint8Array(10)), { instanceOf: SpoolError });
  const err = await t.throwsAsync(incoming.commit(input('1.9')), { instanceOf: SpoolError });
  t.is(err?.code, 'DISCARDED');
  t.is(spool.count(), 0);
  t.deepEqual(await filesUnder(dir + '/incoming'), []);
  t.deepEqual(await filesUnder(dir + '/instances'), []);
  await spool.close();
});

test('a duplicate SOP Instance UID overwrites file and record (and a third copy too)', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const first = await store(spool, '1.2.3.4.6', pattern(5000, 1), { callingAeTitle: 'FIRST' });
  const second = await store(spool, '1.2.3.4.6', pattern(7000, 2), { callingAeTitle: 'SECOND' });
  t.is(spool.count(), 1);
  t.not(second.path, first.path);
  t.like(second.duplicateOf, { size: first.size, callingAeTitle: 'FIRST' });
  t.deepEqual(spool.get('1.2.3.4.6'), second);
  await assertFileBytes(t, path.join(dir, second.path), Buffer.concat([header('1.2.3.4.6'), pattern(7000, 2)]));
  t.deepEqual(await filesUnder(dir + '/instances'), [second.path.slice('instances/'.length)]);
  // Moved to another study by the sender: the study index follows.
  const third = await store(spool, '1.2.3.4.6', pattern(100, 3), { studyInstanceUid: '9.9' });
  t.is(third.path, path.join('instances', '9.9', '1.2.3.4', '1.2.3.4.6.dcm'));
  t.deepEqual(spool.list({ studyInstanceUid: '1.2.3' }), []);
  t.deepEqual(spool.list({ studyInstanceUid: '9.9' }), [third]);
  t.deepEqual(await filesUnder(dir + '/instances'), [third.path.slice('instances/'.length)]);
  t.deepEqual(await spool.findOrphans(), []);
  await spool.close();
});

test('open removes leftover temp files, and keeps (but reports) rows whose file is missing or damaged', async (t) => {
  const dir = tempDir(t);
  let spool = await Spool.open({ dir });
  const a = await store(spool, '1.5.1', pattern(4000, 1));
  const b = await store(spool, '1.5.2', pattern(4000, 2));
  await spool.close();
  // What a crash leaves in incoming/: temp files of instances never acknowledged.
  await fsp.writeFile(path.join(dir, 'incoming', '123-1-abcd.part'), pattern(1000, 3));
  await fsp.writeFile(path.join(dir, 'incoming', '123-2-abcd.part'), 'x');
  await fsp.rm(path.join(dir, a.path));
  await fsp.truncate(path.join(dir, b.path), 10);

  spool = await Spool.open({ dir });
  t.is(spool.startup.tempFilesRemoved, 2);
  t.deepEqual(await filesUnder(dir + '/incoming'), []);
  t.like(spool.startup, { checked: 2, missing: 1, sizeMismatch: 1 });
  t.deepEqual(
    spool.startup.problems.map((p) => [p.sopInstanceUid, p.problem]).sort(),
    [
      ['1.5.1', 'missing'],
      ['1.5.2', 'size'],
    ],
  );
  t.is(spool.count(), 2, 'rows are kept');
  await spool.close();
});

test('backpressure: write() asks to pause for a big instance and drained() resumes it', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir, highWaterMark: 256 * 1024 });
  const body = pattern(8 * 1024 * 1024, 4);
  const incoming = spool.begin(header('big'));
  const pauses = await writeAll(incoming, body);
  t.true(pauses > 0, 'write() returned false at least once');
  const record = await incoming.commit(input('1.6.1'));
  t.is(record.size, 164 + body.length);
  await assertFileBytes(t, path.join(dir, record.path), Buffer.concat([header('big'), body]));
  await spool.close();
});

test.serial('memory stays flat: 200 MB in 16 KB fragments', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  // The producer cycles through a few immutable fragments, so any growth is the spool's. (With a fresh
  // 16 KB Buffer per fragment RSS grows 70-85 MB with or without the spool: V8 collects them lazily.)
  const fragments = Array.from({ length: 16 }, (_, i) => Buffer.alloc(FRAGMENT, i));
  const incoming = spool.begin(header('huge'));
  const before = process.memoryUsage().rss;
  let peak = before;
  const total = 200 * 1024 * 1024;
  for (let at = 0, n = 0; at < total; at += FRAGMENT, n++) {
    if (!incoming.write(fragments[n % fragments.length])) await incoming.drained();
    if ((n & 255) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const record = await incoming.commit(input('1.7.1'));
  peak = Math.max(peak, process.memoryUsage().rss);
  t.is(record.size, 164 + total);
  t.is((await fsp.stat(path.join(dir, record.path))).size, 164 + total);
  t.log(`RSS growth ${((peak - before) / 2 ** 20).toFixed(1)} MB while writing 200 MB`);
  t.true(peak - before < 64 * 2 ** 20, `RSS grew by ${peak - before} bytes`);
  await spool.close();
});

test('UIDs become safe, distinct file names inside instances/', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const evil = await store(spool, '..', pattern(10, 1), { studyInstanceUid: '../../etc', seriesInstanceUid: 'a/b' });
  const slash = await store(spool, '1/2', pattern(10, 2));
  const underscore = await store(spool, '1_2', pattern(10, 3));
  for (const r of [evil, slash, underscore]) {
    t.true(r.path.startsWith('instances/') && !r.path.split('/').includes('..'), r.path);
    t.true(existsSync(path.join(dir, r.path)));
  }
  t.not(slash.path, underscore.path);
  t.is(spool.count(), 3);
  t.deepEqual(await spool.findOrphans(), []);
  await spool.close();
});

test('concurrent commits, including copies of one SOP Instance UID, end consistent', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const distinct = Array.from({ length: 40 }, (_, i) => store(spool, `1.8.${i}`, pattern(3000 + i, i), { seriesInstanceUid: `1.8.0.${i % 4}` }));
  const copies = Array.from({ length: 6 }, (_, i) => store(spool, '1.8.99', pattern(2000 + i, 50 + i)));
  await Promise.all([...distinct, ...copies]);
  t.is(spool.count(), 41);
  const last = spool.get('1.8.99')!;
  t.is((await fsp.stat(path.join(dir, last.path))).size, last.size);
  t.deepEqual(await spool.findOrphans(), []);
  t.is(spool.list({ studyInstanceUid: '1.2.3', limit: 5 }).length, 5);
  t.is(spool.list({ limit: 7 }).length, 7);
  t.is(spool.list({ studyInstanceUid: '1.2.3' }).length, 41);
  await spool.close();
});

test('extra writes share the index transaction and roll back with it', async (t) => {
  const dir = tempDir(t);
  let spool = await Spool.open({ dir });
  let queue = spool.db.openDB<string, string>({ name: 'queue:PEER' });
  const incoming = spool.begin(header('q'));
  incoming.write(pattern(500, 1));
  await incoming.commit(input('1.10.1'), (record) => {
    queue.putSync(`0001:${record.sopInstanceUid}`, record.path);
  });
  t.is(queue.get('0001:1.10.1'), spool.get('1.10.1')!.path);

  const failing = spool.begin(header('q2'));
  failing.write(pattern(500, 2));
  const boom = new Error('routing exploded');
  const err = await t.throwsAsync(
    failing.commit(input('1.10.2'), (record) => {
      queue.putSync(`0002:${record.sopInstanceUid}`, record.path);
      throw boom;
    }),
  );
  t.is(err, boom);
  t.is(spool.get('1.10.2'), undefined);
  t.is(queue.get('0002:1.10.2'), undefined);
  await spool.whenWritten(spool.get('1.10.1')!.path);
  t.deepEqual(await filesUnder(dir + '/incoming'), []);
  t.is((await filesUnder(dir + '/instances')).length, 1);
  await spool.close();

  spool = await Spool.open({ dir });
  queue = spool.db.openDB<string, string>({ name: 'queue:PEER' });
  t.is(queue.get('0001:1.10.1'), spool.get('1.10.1')!.path);
  await spool.close();
});

test('close discards instances still arriving; nothing begins after close', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const incoming = spool.begin(header('late'));
  incoming.write(pattern(50_000, 1));
  await spool.close();
  t.is(incoming.state, 'discarded');
  t.deepEqual(await filesUnder(dir + '/incoming'), []);
  const err = t.throws(() => spool.begin(header('x')), { instanceOf: SpoolError });
  t.is(err?.code, 'CLOSED');
});

/** fs operations that fail on demand, like a full disk (a byte budget) or a single failing step. */
function faultyOps() {
  const state = { budget: Number.POSITIVE_INFINITY, failOnce: undefined as undefined | { op: keyof SpoolFsOps; code: string } };
  const fail = (op: keyof SpoolFsOps) => {
    if (state.failOnce?.op !== op) return;
    const code = state.failOnce.code;
    state.failOnce = undefined;
    throw Object.assign(new Error(`${code}: injected ${op} failure`), { code });
  };
  const ops: Partial<SpoolFsOps> = {
    writev: async (fh, chunks, position) => {
      fail('writev');
      if (state.budget <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      let allowed = Math.min(state.budget, chunks.reduce((n, c) => n + c.byteLength, 0));
      state.budget -= allowed;
      let wrote = 0;
      for (const c of chunks) {
        const part = c.subarray(0, Math.min(c.byteLength, allowed));
        wrote += (await fh.write(part, 0, part.byteLength, position + wrote)).bytesWritten;
        allowed -= part.byteLength;
        if (allowed === 0) break;
      }
      return wrote; // short when the budget runs out, as on a nearly full disk
    },
    sync: async (fh) => {
      fail('sync');
      await fh.sync();
    },
    rename: async (from, to) => {
      fail('rename');
      await fsp.rename(from, to);
    },
    syncDir: async (dir) => {
      fail('syncDir');
      const fh = await fsp.open(dir, 'r');
      await fh.sync().finally(() => fh.close());
    },
  };
  return { state, ops };
}

async function assertNothingPartial(t: ExecutionContext, spool: Spool, dir: string, indexed: number): Promise<void> {
  t.deepEqual(await filesUnder(dir + '/incoming'), [], 'temp file removed');
  t.is(spool.count(), indexed, 'nothing new indexed');
  t.is((await filesUnder(dir + '/instances')).length, indexed, 'no stray file in instances/');
}

test('injected failures: ENOSPC/EDQUOT in write, fsync or rename are DISK_FULL; nothing partial; then it works again', async (t) => {
  const dir = tempDir(t);
  const { state, ops } = faultyOps();
  // Streamed instances: their file is written before the commit (held ones: the next test).
  const spool = await Spool.open({ dir, fsOps: ops, memoryLimit: 0 });

  state.budget = 100_000; // the disk fills up half-way through a 1 MB instance (a short write, then ENOSPC)
  const incoming = spool.begin(header('full'));
  await writeAll(incoming, pattern(1_000_000, 1));
  const full = await t.throwsAsync(incoming.commit(input('1.11.1')), { instanceOf: SpoolError });
  t.is(full?.code, 'DISK_FULL');
  t.is(full?.errno, 'ENOSPC');
  t.is(incoming.state, 'failed');
  await assertNothingPartial(t, spool, dir, 0);

  state.budget = Number.POSITIVE_INFINITY; // space is back: no sticky failure
  await store(spool, '1.11.1', pattern(1_000_000, 1));
  await assertNothingPartial(t, spool, dir, 1);

  let indexed = 1;
  // No fsync of the file or its directory is on the acknowledgement path any more (the journal's flush is:
  // test/actors/ingest/journal-spool.test.ts fails it); the steps that remain are the rename and the write.
  for (const [op, code, expected] of [
    ['rename', 'ENOSPC', 'DISK_FULL'],
    ['writev', 'EIO', 'IO_ERROR'],
  ] as const) {
    state.failOnce = { op, code };
    const err = await t.throwsAsync(store(spool, `1.11.${op}`, pattern(20_000, 2)), { instanceOf: SpoolError }, op);
    t.is(err?.code, expected, op);
    await assertNothingPartial(t, spool, dir, indexed);
    await store(spool, `1.11.${op}`, pattern(20_000, 2));
    await assertNothingPartial(t, spool, dir, ++indexed);
  }
  await spool.close();
});

test('a file that cannot be written after its acknowledgement is kept, sent from memory, and written once it can be', async (t) => {
  const dir = tempDir(t);
  const { state, ops } = faultyOps();
  const spool = await Spool.open({ dir, fsOps: ops });
  const body = pattern(20_000, 3);
  const incoming = spool.begin(header('later'));
  await writeAll(incoming, body);
  state.failOnce = { op: 'writev', code: 'ENOSPC' };
  const record = await incoming.commit(input('1.16.1')); // durable in the journal: acknowledged
  t.is(spool.get('1.16.1')?.path, record.path);
  const written = spool.whenWritten(record.path); // starts the write now: it fails once, then is retried
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(Buffer.from(spool.heldFile(record.path) ?? []).equals(Buffer.concat([header('later'), body])), 'still held while its file cannot be written');
  // The retry's timer does not hold a process open (unref: a router stopping does not wait for it); this test does.
  const keepAlive = setInterval(() => {}, 100);
  await written.finally(() => clearInterval(keepAlive));
  await assertFileBytes(t, path.join(dir, record.path), Buffer.concat([header('later'), body]));
  t.is(spool.heldFile(record.path), undefined);
  await spool.close();
  const again = await Spool.open({ dir });
  t.like(again.startup, { checked: 1, missing: 0, sizeMismatch: 0 });
  await again.close();
});

/** A tiny file system we can fill: tmpfs, else an ext4 loop device, else undefined (not permitted here). */
function smallFileSystem(t: ExecutionContext, bytes: number): { dir: string; kind: string } | undefined {
  const dir = tempDir(t);
  const quiet = { stdio: 'pipe' as const };
  const unmountLater = () => t.teardown(() => execFileSync('umount', ['-l', dir], quiet));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], quiet);
    unmountLater();
    return { dir, kind: 'tmpfs' };
  } catch {
    // not permitted: try a loop device
  }
  const image = `${dir}.img`;
  try {
    execFileSync('truncate', ['-s', String(Math.max(bytes, 8 * 2 ** 20)), image], quiet);
    execFileSync('mkfs.ext4', ['-q', '-F', image], quiet);
    execFileSync('mount', ['-o', 'loop', image, dir], quiet);
    t.teardown(() => rmSync(image, { force: true }));
    unmountLater();
    return { dir, kind: 'ext4 loop device' };
  } catch {
    rmSync(image, { force: true });
    return undefined;
  }
}

async function fillUp(file: string): Promise<void> {
  const fh = await fsp.open(file, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) await fh.write(block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}

test.serial('DISK_FULL for real on a small file system, and storage resumes when space returns', async (t) => {
  const fsys = smallFileSystem(t, 3 * 2 ** 20);
  if (!fsys) {
    t.fail('a small file system could not be mounted (the tests run as root, as CI does)');
    return;
  }
  t.log(`small file system: ${fsys.kind}`);
  const dir = path.join(fsys.dir, 'spool');
  // A journal that fits the tiny file system: two 256 KiB segments kept.
  const options = { dir, journal: { segmentSize: 256 * 1024, segments: 2 } };
  let spool = await Spool.open(options);
  try {
    // An instance bigger than the disk.
    const incoming = spool.begin(header('too big'));
    await writeAll(incoming, pattern(6 * 2 ** 20, 1));
    const err = await t.throwsAsync(incoming.commit(input('1.12.1')), { instanceOf: SpoolError });
    t.is(err?.code, 'DISK_FULL');
    await assertNothingPartial(t, spool, dir, 0);
    // Its space was given back, so the next one fits. If the disk filled up under one of the journal's own
    // appends (not under a new segment), the journal stopped: a hole in the log must not be written past,
    // so ingest needs a restart (documented); after it, storage goes on.
    await store(spool, '1.12.2', pattern(512 * 1024, 2)).catch(async (stopped: unknown) => {
      if (!/journal write failed/.test(String(stopped))) throw stopped;
      t.log('the journal stopped after a failed append: restarted');
      await spool.close();
      spool = await Spool.open(options);
      await store(spool, '1.12.2', pattern(512 * 1024, 2));
    });
    await assertNothingPartial(t, spool, dir, 1);

    // Fill the disk with something else. A small instance is held in memory and its commit needs no new
    // space when the journal's preallocated segment has room: then it is acknowledged (durable in the
    // journal) and its file is written once space returns. When the commit needs space (a new segment,
    // LMDB growth), it fails DISK_FULL and leaves nothing. Which one depends on where the journal stands.
    await fillUp(path.join(fsys.dir, 'filler'));
    const early = await store(spool, '1.12.3', pattern(64 * 1024, 3)).catch((err: unknown) => err);
    if (early instanceof SpoolError) {
      t.is(early.code, 'DISK_FULL');
      await assertNothingPartial(t, spool, dir, 1);
    } else {
      t.log('acknowledged from the journal while the disk was full; its file follows');
      t.truthy(spool.get('1.12.3'));
    }
    await fsp.rm(path.join(fsys.dir, 'filler'));
    const ok = early instanceof SpoolError ? await store(spool, '1.12.3', pattern(64 * 1024, 3)) : spool.get('1.12.3')!;
    // The retry's timer does not hold a process open; this test does while the file is written.
    const keepAlive = setInterval(() => {}, 100);
    await spool.whenWritten(ok.path).finally(() => clearInterval(keepAlive));
    await assertFileBytes(t, path.join(dir, ok.path), Buffer.concat([header('1.12.3'), pattern(64 * 1024, 3)]));
    t.is(spool.count(), 2);
  } finally {
    await spool.close();
  }
});

test.serial('a disk filling up under the index: LMDB commit failures are DISK_FULL, handled, and leave nothing', async (t) => {
  const fsys = smallFileSystem(t, 2 * 2 ** 20);
  if (!fsys) {
    t.fail('a small file system could not be mounted (the tests run as root, as CI does)');
    return;
  }
  const dir = path.join(fsys.dir, 'spool');
  // A journal that fits the tiny file system: two 256 KiB segments kept. Instances streamed (memoryLimit 0),
  // so each file is written before its commit and the commit meets the full disk (held instances: below).
  const spool = await Spool.open({ dir, journal: { segmentSize: 256 * 1024, segments: 2 }, memoryLimit: 0 });
  const filler = path.join(fsys.dir, 'filler');
  try {
    await fillUp(filler);
    // Free 8 KB at a time: the 3 KB file always fits, but now and then LMDB must grow its file and cannot.
    // lmdb-js reports that as EIO (a short write) or ENOSPC, through a second promise that must be handled.
    const seen = new Map<string, number>();
    let stored = 0;
    for (let i = 0; i < 150; i++) {
      const { size } = await fsp.stat(filler);
      await fsp.truncate(filler, Math.max(0, size - 8192));
      try {
        await store(spool, `1.15.${i}`, pattern(3000, i));
        stored++;
      } catch (err) {
        t.true(err instanceof SpoolError && err.code === 'DISK_FULL', String(err));
        const where = (err as Error).message.replace(/:.*/, '');
        seen.set(where, (seen.get(where) ?? 0) + 1);
      }
      await assertNothingPartial(t, spool, dir, stored);
    }
    t.log(`stored ${stored}; DISK_FULL by step: ${JSON.stringify(Object.fromEntries(seen))}`);
    t.true(seen.size > 0);
    await fsp.rm(filler);
    await store(spool, '1.15.last', pattern(100_000, 1));
    t.is(spool.count(), stored + 1);
  } finally {
    await spool.close();
  }
});

test('crash safety: every UID acknowledged before SIGKILL is indexed with an intact file', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'fixtures', 'spool-crash-child.ts'), dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Wait for the first acknowledgements, then kill at a random moment.
  const deadline = Date.now() + 10_000;
  while (!out.includes('\n') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  t.true(out.includes('\n'), `child acknowledged nothing: ${err}`);
  await new Promise((r) => setTimeout(r, 200 + Math.random() * 1500));
  child.kill('SIGKILL');
  await exited;

  const acked = out.split('\n').slice(0, -1); // a torn last line was never fully printed
  t.log(`${acked.length} instances acknowledged before SIGKILL`);
  const spool = await Spool.open({ dir });
  try {
    t.like(spool.startup, { missing: 0, sizeMismatch: 0 });
    for (const uid of acked) {
      const i = Number(uid.slice(uid.lastIndexOf('.') + 1));
      t.is(uid, crashUid(i));
      const record = spool.get(uid);
      if (!record) {
        t.fail(`acknowledged ${uid} is not indexed`);
        continue;
      }
      const expected = Buffer.concat([crashHeader(i), crashBody(i)]);
      t.is(record.size, expected.length);
      t.true(expected.equals(await fsp.readFile(spool.pathOf(record))), `${uid} bytes`);
    }
    t.true(spool.count() >= acked.length);
    t.deepEqual(readdirSync(path.join(dir, 'incoming')), [], 'temp files of unacknowledged instances removed');
    t.log(`${spool.count() - acked.length} more committed but not yet printed; ${(await spool.findOrphans()).length} orphan files (renamed, never indexed)`);
  } finally {
    await spool.close();
  }
});

test.serial('cost of one commit (4 KB) and throughput (512 KB), fsync on', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir });
  const small = pattern(4096 - 164, 1);
  const times: number[] = [];
  for (let i = 0; i < 120; i++) {
    const incoming = spool.begin(header('4k'));
    incoming.write(small);
    const t0 = performance.now();
    await incoming.commit(input(`1.13.${i}`));
    if (i >= 20) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const big = pattern(512 * 1024, 2);
  const t0 = performance.now();
  const n = 40;
  for (let i = 0; i < n; i++) await store(spool, `1.14.${i}`, big);
  const seconds = (performance.now() - t0) / 1000;
  t.log(
    `4 KB commit (rename + one journal fdatasync + LMDB commit without sync): median ${times[times.length >> 1].toFixed(2)} ms, ` +
      `p95 ${times[Math.floor(times.length * 0.95)].toFixed(2)} ms; 512 KB: ${((n * big.length) / 2 ** 20 / seconds).toFixed(0)} MB/s, ${(n / seconds).toFixed(0)} instances/s`,
  );
  t.is(spool.count(), 120 + n);
  await spool.close();
});

// lmdb-js 3.5: a read while the environment closes (here: a write still in flight) re-arms its read-txn
// reset timer on the closed txn, which then throws "Attempt to reset an invalid read txn" from the
// timer, uncaught (the process dies). The spool refuses such reads itself, with CLOSED.
test('reads while the index closes are refused with CLOSED and leave lmdb no timer that throws', async (t) => {
  const dir = tempDir(t);
  const spool = await Spool.open({ dir, fsync: false });
  await store(spool, '1.2.3.4.7', pattern(1000, 2));
  const refused: (string | undefined)[] = [];
  const dbClose = spool.db.close.bind(spool.db);
  spool.db.close = () => {
    const closed = dbClose();
    for (const read of [() => spool.get('1.2.3.4.7'), () => spool.count(), () => spool.list()]) {
      try {
        read();
        refused.push('read went through');
      } catch (err) {
        refused.push((err as SpoolError).code);
      }
    }
    return closed;
  };
  void spool.db.put('in-flight', 1); // LMDB's close waits for this write: the window stays open
  await spool.close();
  t.deepEqual(refused, ['CLOSED', 'CLOSED', 'CLOSED']);
  await t.throwsAsync(spool.remove('1.2.3.4.7'), { instanceOf: SpoolError });
  // lmdb's reset timer is a setTimeout(0) armed during close: it would have fired (and thrown) by now.
  await new Promise((resolve) => setTimeout(resolve, 1));
});
