import { Spool } from '../actors/spool.ts';
import { mkdtempSync } from 'node:fs';
const t0 = performance.now();
const s = await Spool.open({ dir: mkdtempSync('/tmp/so-') });
console.log('open', (performance.now() - t0).toFixed(0), 'ms');
const t1 = performance.now();
await s.close();
console.log('close', (performance.now() - t1).toFixed(0), 'ms');
