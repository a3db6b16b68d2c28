// The receivers `npm run bench` compares, started the same way for every set: DCMTK storescp (writes
// files, no fsync), Orthanc (its defaults: fdatasync per file, SQLite index) and the router (durable:
// the acknowledgement waits for the data and its routing decision on disk). Each is fed by DCMTK
// storescu processes over loopback; what is measured is wall time from the first connect to the last
// acknowledgement, and the receiver's peak RSS (VmHWM).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { startOrthanc } from '../test/helpers/orthanc.ts';
import { run, startRouter, startStorescp, tempDir } from '../test/helpers/processes.ts';
import type { Started } from '../test/helpers/processes.ts';

export type Receiver = Started & { name: string; port: number; aeTitle: string; pid: number };

/** The router's journal: per commit, where its durable barrier went (µs), from its 'journal group commits' line. */
export type GroupCommits = { groups: number; commits: number; perCommitUs: { capture: number; write: number; flush: number; apply: number } };

export type Measured = { seconds: number; instances: number; bytes: number; peakRssMb: number; journal?: GroupCommits };

/** The router's account of its group commits, logged when it stops. */
export function groupCommitsOf(output: string): GroupCommits | undefined {
  const line = output.split('\n').find((l) => l.includes('"msg":"journal group commits"'));
  return line ? (JSON.parse(line) as GroupCommits) : undefined;
}

export function peakRssMb(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return NaN;
  }
}

export async function startReceiver(kind: 'storescp' | 'orthanc' | 'router', pdu: number, opts: { fsync?: boolean } = {}): Promise<Receiver> {
  switch (kind) {
    case 'storescp': {
      const scp = await startStorescp(tempDir('bench-storescp-'), { extraArgs: ['--max-pdu', String(pdu)] });
      return { ...scp, name: 'DCMTK storescp', pid: scp.child.pid! };
    }
    case 'orthanc': {
      const orthanc = await startOrthanc({ aeTitle: 'ORTHANC' });
      return { ...orthanc, name: 'Orthanc', pid: orthanc.child.pid! };
    }
    case 'router': {
      const router = await startRouter({ listener: { maxPduLength: pdu, maxAssociations: 64 }, fsync: opts.fsync ?? true });
      return { ...router, name: opts.fsync === false ? 'router (fsync off)' : 'router', pid: router.child.pid! };
    }
  }
}

/**
 * Sends every file of `dir` to the receiver over `associations` concurrent storescu processes (the
 * files dealt round-robin), and measures until the last one exits.
 */
export async function sendTo(receiver: Receiver, dir: string, pdu: number, associations = 1): Promise<Measured> {
  const files = readdirSync(dir).filter((n) => n.endsWith('.dcm')).sort().map((n) => `${dir}/${n}`);
  const bytes = files.reduce((n, f) => n + readFileSync(f).length, 0);
  const shares = Array.from({ length: associations }, (_, i) => files.filter((_, k) => k % associations === i));
  const started = process.hrtime.bigint();
  const results = await Promise.all(shares.map((share) =>
    run('storescu', ['-aec', receiver.aeTitle, '-xe', '--max-pdu', String(pdu), '127.0.0.1', String(receiver.port), ...share], { timeoutMs: 900_000 }),
  ));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const failed = results.find((r) => r.code !== 0);
  if (failed) throw new Error(`storescu to ${receiver.name} failed: ${failed.stderr.slice(0, 2000)}`);
  return { seconds, instances: files.length, bytes, peakRssMb: peakRssMb(receiver.pid) };
}

/** Starts a fresh receiver, sends, stops it: `repeat` times, keeping the median run. */
export async function measure(kind: 'storescp' | 'orthanc' | 'router', dir: string, pdu: number, opts: { associations?: number; repeat?: number; fsync?: boolean } = {}): Promise<Measured & { name: string }> {
  const runs: (Measured & { name: string })[] = [];
  for (let i = 0; i < (opts.repeat ?? 1); i++) {
    // Every receiver starts from a clean page cache: what the previous one left dirty (storescp's
    // 500 MB of unsynced files) would otherwise be written back during this one's fdatasyncs.
    spawnSync('sync');
    const receiver = await startReceiver(kind, pdu, opts);
    try {
      const measured = await sendTo(receiver, dir, pdu, opts.associations);
      await receiver.stop();
      const journal = kind === 'router' ? groupCommitsOf(receiver.output()) : undefined;
      runs.push({ ...measured, name: receiver.name, ...(journal ? { journal } : {}) });
    } finally {
      await receiver.stop();
    }
  }
  runs.sort((a, b) => a.seconds - b.seconds);
  return runs[Math.floor(runs.length / 2)];
}
