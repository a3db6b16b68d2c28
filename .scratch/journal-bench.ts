import { Journal } from '../actors/ingest/journal.ts';
import { mkdtempSync } from 'node:fs';
import * as fs from 'node:fs';
const dir = mkdtempSync('/work/wt/jb-j-');
let syncT = 0, nsync = 0;
const j = await Journal.open({ dir, io: { datasync: (fd) => { const t = performance.now(); fs.fdatasyncSync(fd); syncT += performance.now() - t; nsync++; } } });
await j.replay({ data() {}, commit() {} });
const data = Buffer.alloc(4164, 1);
const times: number[] = [];
for (let i = 0; i < 1000; i++) {
  const s = j.stream();
  const t0 = performance.now();
  await j.append(s, [data]);
  await j.commit(s, () => Buffer.alloc(400));
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`median ${times[500].toFixed(3)} p90 ${times[900].toFixed(3)} datasync avg ${(syncT / nsync).toFixed(3)} n=${nsync}`);
await j.close();
fs.rmSync(dir, { recursive: true });
