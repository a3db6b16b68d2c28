import { open } from 'lmdb';
import { mkdtempSync } from 'node:fs';
for (const cfg of [{ overlappingSync: true }, { overlappingSync: false, noSync: true }, {overlappingSync: true, noSync: true}]) {
  const dir = mkdtempSync('/work/wt/jb-lmdb-');
  const db = open({ path: dir, compression: false, eventTurnBatching: false, maxDbs: 8, ...cfg });
  const sub = db.openDB({ name: 'x' });
  const times: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    db.transactionSync(() => { sub.put(`k${i}`, { a: i, b: 'x'.repeat(300) }); }, 0x10003 as any);
    times.push(performance.now() - t0);
    await new Promise((r) => setImmediate(r));
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify(cfg), `median ${times[250].toFixed(3)} p90 ${times[450].toFixed(3)}`);
  await db.close();
}
