// The journal's crash windows, with real processes killed by SIGKILL (DESIGN property 1): a child
// spool (test/helpers/journal-crash-child.ts) stores instances, each queued to a peer in its own commit,
// and dies at a chosen step. After a restart on the same directory every instance it acknowledged is
// indexed, byte-identical in its Part-10 file, and still queued (its routing decision was replayed).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Spool } from '../../../actors/ingest/spool.ts';
import { OutboundQueue } from '../../../actors/forward/outbound-queue.ts';
import {
  RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, checkRecord, decodeRecordHeader, decodeSegmentHeader, encodeRecordHeader,
} from '../../../actors/ingest/journal-format.ts';
import { crashBody, crashHeader, crashInput, STUDY } from './fixtures/spool-crash-data.ts';

const CHILD = path.resolve(import.meta.dirname, '../../helpers/journal-crash-child.ts');

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'journal-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Run = { acked: string[]; signal: NodeJS.Signals | null; code: number | null; output: string };

/** Run the child to its end (or its death); `killAfterStart` kills it that many ms after it began opening the spool. */
function runChild(dir: string, env: Record<string, string>, killAfterStart?: number): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD], { env: { ...process.env, JOURNAL_DIR: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d: Buffer) => {
      const before = out;
      out += d;
      if (killAfterStart !== undefined && !before.includes('STARTING') && out.includes('STARTING')) setTimeout(() => child.kill('SIGKILL'), killAfterStart);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    child.once('exit', (code, signal) => {
      const acked = out.split('\n').filter((l) => l.startsWith('ACK ')).map((l) => l.slice(4).trim());
      resolve({ acked, signal, code, output: out });
    });
  });
}

/** Every acknowledged instance: indexed, its file byte-identical, its queue item there. */
async function assertAcknowledgedSurvive(t: ExecutionContext, dir: string, acked: string[]): Promise<void> {
  const spool = await Spool.open({ dir, journal: { segmentSize: 256 * 1024, segments: 2 } });
  try {
    const queue = OutboundQueue.open(spool);
    const queued = new Set(queue.list('PACS').map((i) => i.sopInstanceUid));
    for (const uid of acked) {
      const i = Number(uid.slice(STUDY.length + 1));
      const record = spool.get(uid);
      if (!record) {
        t.fail(`${uid} was acknowledged but is not indexed`);
        continue;
      }
      const file = readFileSync(path.join(dir, record.path));
      const expected = Buffer.concat([crashHeader(i), crashBody(i)]);
      t.true(file.equals(expected), `${uid}: file intact`);
      t.true(queued.has(uid), `${uid}: its forward is still queued`);
    }
    // Anything indexed beyond the acknowledged ones is whole too (committed, not yet acknowledged).
    for (const record of spool.list()) t.is(readFileSync(path.join(dir, record.path)).length, record.size, record.sopInstanceUid);
    t.deepEqual(readdirSync(path.join(dir, 'incoming')), [], 'no leftovers');
  } finally {
    await spool.close();
  }
}

for (const [name, crash] of [
  ['between the flush and the index update', 'after-flush:25'],
  ['while a segment is being recycled', 'header:4'],
  ['during a checkpoint', 'checkpoint:3'],
] as const) {
  test(`SIGKILL ${name}: every acknowledged instance is indexed, intact and queued`, async (t) => {
    const dir = tempDir(t);
    const run = await runChild(dir, { CRASH: crash, COUNT: '120' });
    t.is(run.signal, 'SIGKILL', `the child died where it was told (${run.output.slice(-500)})`);
    t.true(run.acked.length > 0, 'some instances were acknowledged first');
    await assertAcknowledgedSurvive(t, dir, run.acked);
    t.log(`${run.acked.length} acknowledged before SIGKILL ${name}`);
  });
}

test('SIGKILL right after acknowledgements whose Part-10 files are not written yet: replay writes them from the journal', async (t) => {
  const dir = tempDir(t);
  const run = await runChild(dir, { CRASH: 'after-ack:40', COUNT: '120' });
  t.is(run.signal, 'SIGKILL', run.output.slice(-500));
  const noFile = /^NOFILE (.*)$/m.exec(run.output)?.[1].split(' ').filter(Boolean) ?? [];
  t.true(noFile.length > 0, 'at the kill, some acknowledged instances had no file yet (held in memory, written after the acknowledgement)');
  await assertAcknowledgedSurvive(t, dir, run.acked);
  t.log(`${run.acked.length} acknowledged, ${noFile.length} of them without a file when killed`);
});

test('SIGKILL during replay, again and again: replay is idempotent and loses nothing', async (t) => {
  const dir = tempDir(t);
  // Leave a journal to replay: killed right after a flush, with instances in flight.
  const first = await runChild(dir, { CRASH: 'after-flush:40', COUNT: '150' });
  t.is(first.signal, 'SIGKILL');
  const acked = new Set(first.acked);
  // Restart and kill it at random moments while it opens (replays); it stores more when it gets there.
  let killedInReplay = 0;
  for (let round = 0; round < 5; round++) {
    const run = await runChild(dir, { CRASH: 'none', COUNT: '150' }, round * 150 + Math.floor(Math.random() * 100));
    if (!run.output.includes('OPEN')) killedInReplay++;
    for (const uid of run.acked) acked.add(uid);
  }
  t.log(`killed ${killedInReplay} of 5 restarts before replay finished`);
  await assertAcknowledgedSurvive(t, dir, [...acked]);
  t.log(`${acked.size} acknowledged over the runs`);
});

test('a torn last record after SIGKILL: the tail is ignored and the next run continues behind it', async (t) => {
  const dir = tempDir(t);
  const first = await runChild(dir, { CRASH: 'after-flush:10', COUNT: '60' });
  t.is(first.signal, 'SIGKILL');
  // Tear the tail: a record header that promises a payload whose bytes (and CRC) never made it.
  const tail = lastRecordEnd(path.join(dir, 'journal'));
  const fd = fs.openSync(tail.file, 'r+');
  const fake = encodeRecordHeader(RecordType.COMMIT, tail.seq, tail.offset, [Buffer.alloc(100, 1)]);
  fs.writeSync(fd, fake, 0, fake.length, tail.offset);
  fs.writeSync(fd, Buffer.alloc(60, 1), 0, 60, tail.offset + RECORD_HEADER_SIZE); // 60 of its 100 bytes
  fs.closeSync(fd);
  const second = await runChild(dir, { CRASH: 'none', COUNT: '20' });
  t.is(second.code, 0, second.output.slice(-500));
  await assertAcknowledgedSurvive(t, dir, [...first.acked, ...second.acked]);
});

/** Where the last intact record of the newest segment ends (the journal's tail after a crash). */
function lastRecordEnd(dir: string): { file: string; seq: number; offset: number } {
  let newest: { file: string; seq: number } | undefined;
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.wal'))) {
    const file = path.join(dir, name);
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    const h = decodeSegmentHeader(head);
    if (h && (!newest || h.seq > newest.seq)) newest = { file, seq: h.seq };
  }
  const data = fs.readFileSync(newest!.file);
  let offset = SEGMENT_HEADER_SIZE;
  for (;;) {
    const h = decodeRecordHeader(data.subarray(offset), newest!.seq, data.length - offset);
    if (!h || !checkRecord(data.subarray(offset, offset + RECORD_HEADER_SIZE), data.subarray(offset + RECORD_HEADER_SIZE, offset + RECORD_HEADER_SIZE + h.length), h.crc)) break;
    offset += RECORD_HEADER_SIZE + h.length;
  }
  return { file: newest!.file, seq: newest!.seq, offset };
}

test('one process owns the journal: a second ingesting open is refused, an index-only open reads alongside', async (t) => {
  const dir = tempDir(t);
  const owner = await Spool.open({ dir });
  const incoming = owner.begin(crashHeader(1));
  incoming.write(crashBody(1));
  await incoming.commit(crashInput(1));
  const err = await t.throwsAsync(Spool.open({ dir }));
  t.regex(String(err?.message), /in use by process/);
  const reader = await Spool.open({ dir, ingest: false });
  t.truthy(reader.get(crashInput(1).sopInstanceUid), 'the index is readable beside the owner');
  t.throws(() => reader.begin(crashHeader(2)), { message: /without ingest/ });
  await reader.close();
  await owner.close();
  const next = await Spool.open({ dir }); // released at close
  t.is(next.count(), 1);
  await next.close();
});
