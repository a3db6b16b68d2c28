import { startRouter } from '/work/main/test/helpers/processes.ts';
const t0 = Date.now();
const r = await startRouter();
console.log('started in', Date.now() - t0, 'ms');
await r.stop();
console.log('stopped');
