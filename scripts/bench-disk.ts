// `node scripts/bench-disk.ts [dir]`: what one durable barrier costs on this file system, the physical room
// the journal is built for. (a) today's per-instance protocol: new file + fsync + rename + directory fsync;
// (b) the journal's: append into a preallocated (zero-written) file + one fdatasync. Prints median and p90 in ms.
// A measurement, not a test.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const dir = fs.mkdtempSync(path.join(process.argv[2] ?? tmpdir(), 'bench-disk-'));
const iterations = Number(process.env.ITER ?? 300);

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `median ${s[s.length >> 1].toFixed(3)} ms, p90 ${s[Math.floor(s.length * 0.9)].toFixed(3)} ms`;
}

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

for (const size of [4096, 512 * 1024]) {
  const data = Buffer.alloc(size, 7);
  const perFile: number[] = [];
  const dirFd = fs.openSync(dir, 'r');
  for (let i = 0; i < iterations; i++) {
    perFile.push(time(() => {
      const tmp = path.join(dir, `t${i}.part`);
      const fd = fs.openSync(tmp, 'wx');
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, path.join(dir, `f${i}.dcm`));
      fs.fsyncSync(dirFd);
    }));
  }
  fs.closeSync(dirFd);
  const seg = path.join(dir, `segment-${size}`);
  const segFd = fs.openSync(seg, 'w+');
  const total = (size + 64) * iterations;
  const zeros = Buffer.alloc(1024 * 1024);
  for (let at = 0; at < total; at += zeros.length) fs.writeSync(segFd, zeros, 0, Math.min(zeros.length, total - at), at);
  fs.fsyncSync(segFd);
  const append: number[] = [];
  let pos = 0;
  for (let i = 0; i < iterations; i++) {
    append.push(time(() => {
      fs.writeSync(segFd, data, 0, size, pos);
      fs.fdatasyncSync(segFd);
    }));
    pos += size + 64;
  }
  fs.closeSync(segFd);
  console.log(`${size / 1024} KB: new file+fsync+rename+dir fsync ${stats(perFile)}; preallocated append+fdatasync ${stats(append)}`);
}
fs.rmSync(dir, { recursive: true, force: true });
