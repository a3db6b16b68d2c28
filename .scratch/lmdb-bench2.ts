import { open } from 'lmdb';
import { mkdtempSync } from 'node:fs';
for (const mode of ['async-overlap', 'sync-overlap-nowait']) {
  const dir = mkdtempSync('/work/wt/jb-lmdb-');
  const db = open({ path: dir, compression: false, eventTurnBatching: false, maxDbs: 8, overlappingSync: true });
  const sub = db.openDB({ name: 'x' });
  const times: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    if (mode === 'async-overlap') await db.transaction(() => { sub.put(`k${i}`, { a: i, b: 'x'.repeat(300) }); });
    else { db.transactionSync(() => { sub.put(`k${i}`, { a: i, b: 'x'.repeat(300) }); }, 0x10003 as any); }
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 1));
  }
  times.sort((a, b) => a - b);
  console.log(mode, `median ${times[250].toFixed(3)} p90 ${times[450].toFixed(3)}`);
  await db.close();
}
