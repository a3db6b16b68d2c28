// The journal on its own: records come back from replay exactly as committed, across segments and
// reopenings; a torn last record, stale records of a recycled segment and the writes of a failed group
// are never taken for committed ones; one fdatasync serves every commit waiting at the same time.
// "Crashes" here abandon a Journal without close() (the page cache keeps what it wrote, as after
// SIGKILL); journal-crash.test.ts kills real processes.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Journal } from '../../../actors/ingest/journal.ts';
import type { JournalOptions } from '../../../actors/ingest/journal.ts';
import { RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, decodeSegmentHeader } from '../../../actors/ingest/journal-format.ts';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'journal-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function bytes(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 17) & 0xff;
  return b;
}

type Replayed = { commits: Array<{ lsn: number; stream: number; payload: string }>; data: Map<number, Buffer[]> };

async function openAndReplay(opts: JournalOptions): Promise<{ journal: Journal; got: Replayed }> {
  const journal = await Journal.open(opts);
  const got: Replayed = { commits: [], data: new Map() };
  await journal.replay({
    data: (stream, b) => void (got.data.get(stream) ?? got.data.set(stream, []).get(stream)!).push(b),
    commit: (lsn, stream, payload) => void got.commits.push({ lsn, stream, payload: payload.toString() }),
  });
  return { journal, got };
}

/** Append `body` (in 16 KB pieces) as one stream and commit it with `label` as payload. */
async function put(journal: Journal, body: Buffer, label: string): Promise<{ lsn: number; stream: number }> {
  const s = journal.stream();
  for (let at = 0; at < body.length; at += 16384) await journal.append(s, [body.subarray(at, at + 16384)]);
  const lsn = await journal.commit(s, () => built(label));
  return { lsn, stream: s.id! };
}

/** The segment file that holds segment `seq` (slots are reused: the header says which is which). */
function slotOf(dir: string, seq: number): string {
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
    const fd = fs.openSync(path.join(dir, name), 'r');
    fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    if (decodeSegmentHeader(head)?.seq === seq) return path.join(dir, name);
  }
  throw new Error(`no segment ${seq}`);
}

function built(label: string) {
  return { payload: Buffer.from(label), apply: () => {} };
}

function streamBytes(got: Replayed, stream: number): Buffer {
  return Buffer.concat(got.data.get(stream) ?? []);
}

test('committed streams replay byte-identical, across segment boundaries, after a crash', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 128 * 1024, segments: 16 });
  const bodies = [bytes(100_000, 1), bytes(300_000, 2), bytes(4_000, 3)]; // the second spans three segments
  const ids = [];
  for (const [i, b] of bodies.entries()) ids.push(await put(journal, b, `c${i}`));
  // Crash: no close(). Reopen on the same directory: replay starts at the last checkpoint (the journal
  // may take one on its own when it needs a segment), so c0 may already be behind it; c1 and c2 are not.
  const { journal: again, got } = await openAndReplay({ dir });
  const replayed = got.commits.map((c) => c.payload);
  t.deepEqual(replayed.slice(-2), ['c1', 'c2']);
  for (const [i, b] of bodies.entries()) if (replayed.includes(`c${i}`)) t.true(streamBytes(got, ids[i].stream).equals(b), `stream ${i}`);
  await again.close();
});

test('a torn last record is the end of the log; what is written after the restart is found behind it', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 256 * 1024 });
  await put(journal, bytes(10_000, 1), 'kept');
  const torn = await put(journal, bytes(10_000, 2), 'torn');
  // Tear the second COMMIT: its payload's last byte never reached the disk.
  const fd = fs.openSync(slotOf(dir, Math.floor(torn.lsn / (256 * 1024))), 'r+');
  const at = torn.lsn % (256 * 1024) + RECORD_HEADER_SIZE + 'torn'.length - 1;
  fs.writeSync(fd, Buffer.from([0]), 0, 1, at);
  fs.closeSync(fd);

  const second = await openAndReplay({ dir });
  t.deepEqual(second.got.commits.map((c) => c.payload), ['kept'], 'the torn COMMIT is not taken');
  await put(second.journal, bytes(5_000, 3), 'after');
  // Crash again: the log now runs kept → END over the torn bytes → next segment → after.
  const third = await openAndReplay({ dir });
  t.deepEqual(third.got.commits.map((c) => c.payload), ['kept', 'after']);
  await third.journal.close();
});

test('a checkpoint ends replay there and recycles segments; stale records of a reused segment are never read', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 64 * 1024, segments: 2 });
  for (let i = 0; i < 30; i++) await put(journal, bytes(20_000, i), `old${i}`); // ~10 segments through a pool of 2–3
  await journal.checkpoint();
  const slots = fs.readdirSync(dir).filter((n) => n.endsWith('.wal'));
  t.true(slots.length <= 3, `segments reused, not piled up (${slots.length})`);
  await put(journal, bytes(20_000, 99), 'new');
  const { journal: again, got } = await openAndReplay({ dir });
  t.deepEqual(got.commits.map((c) => c.payload), ['new'], 'only what came after the checkpoint');
  await again.close();
  // A clean close checkpoints: nothing left to replay.
  const { journal: last, got: none } = await openAndReplay({ dir });
  t.deepEqual(none.commits, []);
  await last.close();
});

test('a stream still open holds the checkpoint back: its early bytes are not recycled', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 64 * 1024, segments: 2 });
  const long = journal.stream();
  const body = bytes(200_000, 7);
  await journal.append(long, [body.subarray(0, 50_000)]);
  for (let i = 0; i < 10; i++) await put(journal, bytes(20_000, i), `other${i}`);
  await journal.checkpoint();
  await journal.append(long, [body.subarray(50_000)]);
  await journal.commit(long, () => built('long'));
  const { journal: again, got } = await openAndReplay({ dir });
  t.true(got.commits.some((c) => c.payload === 'long'));
  t.true(streamBytes(got, long.id!).equals(body), 'all of the long stream, from before the checkpoint too');
  await again.close();
});

test('an ended stream takes no more space: the rest of an append waiting for a slot is dropped with ENDED', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 64 * 1024, segments: 2 });
  const failed = journal.stream();
  // More than the pool holds: the append has to wait for new segments on the way.
  const pending = journal.append(failed, Array.from({ length: 20 }, (_, i) => bytes(16_384, i)));
  journal.abandon(failed); // its instance failed meanwhile (its file write, the disk) and was discarded
  const err = await t.throwsAsync(pending);
  t.is((err as { code?: string }).code, 'ENDED');
  const slots = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length;
  t.true(slots <= 4, `no segments made for the dropped rest (${slots} slots for 320 KB of 64 KB segments)`);
  await t.throwsAsync(journal.append(failed, [bytes(10, 1)]), { message: /ended/ });
  await journal.close();
});

test('a large stream grows the pool; when it is abandoned the extra segments are given back without waiting for the timed checkpoint', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 64 * 1024, segments: 2 });
  const large = journal.stream();
  for (let i = 0; i < 12; i++) await journal.append(large, [bytes(16_384, i)]); // 192 KB: the pool grows past 2
  const grown = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length;
  t.true(grown > 2, `grown to ${grown}`);
  journal.abandon(large);
  const deadline = Date.now() + 30_000;
  while (fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length, 2, 'back to the pool\'s size');
  await journal.close();
});

test('holdBack: a checkpoint stops where the owner still needs the journal, and still frees the segments before it', async (t) => {
  const dir = tempDir(t);
  const { journal } = await openAndReplay({ dir, segmentSize: 64 * 1024, segments: 2 });
  for (let i = 0; i < 10; i++) await put(journal, bytes(20_000, i), `before${i}`);
  let held: number | undefined;
  journal.holdBack = () => held;
  const wanted: number[] = [];
  journal.beforeCheckpoint = async (lsn) => void wanted.push(lsn);
  const kept = journal.stream();
  await journal.append(kept, [bytes(20_000, 50)]);
  held = kept.id; // its file could not be written: the owner needs the journal from here
  await journal.commit(kept, () => built('file not written yet'));
  for (let i = 0; i < 3; i++) await put(journal, bytes(20_000, 60 + i), `after${i}`); // rollovers checkpoint too
  await journal.checkpoint();
  t.is(journal.checkpointLsn, held!, 'the checkpoint stops at the held stream');
  t.true(wanted.every((lsn) => lsn <= held!), 'the owner is asked only for what came before it');
  t.true(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length <= 3, 'segments before it recycled');
  // A crash now: replay gives the held instance (and what followed) back.
  const { journal: again, got } = await openAndReplay({ dir });
  t.deepEqual(got.commits.map((c) => c.payload), ['file not written yet', 'after0', 'after1', 'after2']);
  t.true(streamBytes(got, held!).equals(bytes(20_000, 50)));
  await again.close();
});

test('group commit: commits waiting together share one fdatasync', async (t) => {
  const dir = tempDir(t);
  let syncs = 0;
  const { journal } = await openAndReplay({ dir, io: { datasync: async (fd) => (syncs++, fs.fdatasyncSync(fd)) } });
  const streams = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const s = journal.stream();
      await journal.append(s, [bytes(4000, i)]);
      return s;
    }),
  );
  const before = syncs;
  await Promise.all(streams.map((s, i) => journal.commit(s, () => built(`g${i}`))));
  // The first commit starts a flush at once; the 19 others arrive while it runs, and share the next.
  t.true(syncs - before <= 2, `${syncs - before} fdatasyncs for 20 commits`);
  await journal.close();
});

test('a failed build fails its own commit only; a failed flush voids the group and stops the journal', async (t) => {
  const dir = tempDir(t);
  let failSync = false;
  const { journal } = await openAndReplay({
    dir,
    io: {
      datasync: async (fd) => {
        if (failSync) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        fs.fdatasyncSync(fd);
      },
    },
  });
  const a = journal.stream();
  const b = journal.stream();
  await journal.append(a, [bytes(1000, 1)]);
  await journal.append(b, [bytes(1000, 2)]);
  const results = await Promise.allSettled([
    journal.commit(a, () => {
      throw new Error('rule failed');
    }),
    journal.commit(b, () => built('b')),
  ]);
  t.is(results[0].status, 'rejected');
  t.is(results[1].status, 'fulfilled');

  failSync = true;
  const c = journal.stream();
  await journal.append(c, [bytes(1000, 3)]);
  const err = await t.throwsAsync(journal.commit(c, () => built('c')));
  t.regex(String(err?.message), /fdatasync failed/);
  // Stopped: nothing after a failed flush can be trusted to reach the disk.
  await t.throwsAsync(journal.append(journal.stream(), [bytes(10, 4)]));
  const { journal: again, got } = await openAndReplay({ dir });
  t.deepEqual(got.commits.map((x) => x.payload), ['b'], 'the failed group is VOID, the good commit is there');
  await again.close();
});
