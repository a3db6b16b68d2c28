// `node scripts/bench-association.ts`: what the association and DIMSE layer cost per instance,
// in-process (issue 13). A benchmark, not a test: nothing here asserts a time.
// 1. Spawn-to-done of transaction machines on an association machine in Sta6, no socket, no disk:
//    C-ECHO SCP, and C-STORE SCP with a store that answers Success at once.
// 2. N C-STOREs of 4 KB through the in-process router over loopback (our SCU, one association),
//    inspector on as shipped (metrics and recent events subscribed), spool fsync off (BENCH_FSYNC=1: on), so the
//    time left is mostly the association, DIMSE, spool file operations and logging.
// BENCH_N (default 3000) sets the count; BENCH_LOG (default info) the router's log level (logs go to
// /dev/null); BENCH_ONLY=spawn or BENCH_ONLY=router runs part 1 or part 2 alone.
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createActor, fromPromise } from 'xstate';
import { stringify } from 'yaml';
import { createInspection } from '../actors/observe/inspector.ts';
import { startRouter } from '../actors/router.ts';
import { ScuAssociation } from '../actors/net/scu.ts';
import { parseConfig } from '../config/config.ts';
import { associationMachine } from '../machines/association.machine.ts';
import { cStoreScpMachine } from '../machines/dimse/c-store-scp.machine.ts';
import type { StoreInstanceInput, StoreResult } from '../machines/dimse/c-store-scp.machine.ts';
import { CommandField, Priority } from '../protocol/dimse.ts';
import { makeInstance, SOP, TS } from '../test/helpers/dicom-files.ts';
import { tempDir } from '../test/helpers/processes.ts';
import { Status } from '../protocol/status.ts';

const N = Number(process.env.BENCH_N ?? 3000);
const us = (ns: bigint, n: number) => (Number(ns) / 1e3 / n).toFixed(1);
/** Wall time and CPU time (all threads: user + system) per operation, in µs: CPU is steadier on a shared machine. */
async function timed(n: number, body: () => Promise<void>): Promise<{ wall: string; cpu: string; rate: number }> {
  const cpu0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  await body();
  const elapsed = process.hrtime.bigint() - started;
  const cpu = process.cpuUsage(cpu0);
  return { wall: us(elapsed, n), cpu: ((cpu.user + cpu.system) / n).toFixed(1), rate: Math.round(n / (Number(elapsed) / 1e9)) };
}

/** An association machine in Sta6 (acceptor), its C-STORE SCP answering Success without storage. */
function establishedMachine() {
  const logic = associationMachine.provide({
    actors: {
      cStoreScp: cStoreScpMachine.provide({ actors: { storeInstance: fromPromise<StoreResult, StoreInstanceInput>(async () => ({ status: Status.SUCCESS })) } }),
    },
  });
  const machine = createActor(logic, { input: { artimTimeoutMs: 30_000 } }).start();
  const rq = {
    type: 'A-ASSOCIATE-RQ' as const, protocolVersion: 1, calledAeTitle: 'R', callingAeTitle: 'M', applicationContext: '1.2.840.10008.3.1.1.1',
    presentationContexts: [{ id: 1, abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }],
    userInformation: { maxPduLength: 16384, implementationClassUid: '1.2', roleSelections: [], sopClassExtended: [], sopClassCommonExtended: [] },
  };
  machine.send({ type: 'TRANSPORT_ACCEPTED' });
  machine.send({ type: 'ASSOCIATE_RQ_RECEIVED', pdu: rq });
  machine.send({ type: 'A_ASSOCIATE_ACCEPT_REQUESTED', ac: { ...rq, type: 'A-ASSOCIATE-AC', presentationContexts: [{ id: 1, result: 0, transferSyntax: TS.explicitLE }] } });
  return machine;
}

async function spawnToDone(service: 'cEchoScp' | 'cStoreScp', n: number): Promise<{ wall: string; cpu: string }> {
  const machine = establishedMachine();
  let done: () => void = () => {};
  machine.on('DIMSE_COMPLETED', () => done());
  const command = service === 'cEchoScp'
    ? { CommandField: CommandField.C_ECHO_RQ, AffectedSOPClassUID: '1.2.840.10008.1.1', CommandDataSetType: 0x0101 }
    : { CommandField: CommandField.C_STORE_RQ, AffectedSOPClassUID: SOP.ct, AffectedSOPInstanceUID: '1.2.3', Priority: Priority.MEDIUM, CommandDataSetType: 0 };
  const one = async (messageId: number) => {
    const finished = new Promise<void>((resolve) => (done = resolve));
    const input = { associationId: 'bench', messageId, contextId: 1, command: { ...command, MessageID: messageId }, dimseTimeoutMs: 60_000 };
    machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service, input });
    if (service === 'cStoreScp') machine.getSnapshot().children[`dimse-${messageId}`]?.send({ type: 'DATASET_RECEIVED' });
    await finished;
  };
  for (let i = 1; i <= 500; i++) await one(i); // warm-up
  const result = await timed(n, async () => {
    for (let i = 1; i <= n; i++) await one(1000 + i);
  });
  machine.stop();
  return result;
}

async function storesThroughRouter(n: number): Promise<{ wall: string; cpu: string; rate: number; inspection: string }> {
  const dir = tempDir('bench-assoc-');
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  const config = parseConfig(
    stringify({
      storage: { dir: join(dir, 'data'), fsync: process.env.BENCH_FSYNC === '1' },
      listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 1, bind: '127.0.0.1' }],
      routing: { rulesDir },
      inspect: { enabled: true, port: 0 }, // as shipped: metrics and recent events subscribed
    }),
    join(dir, 'router.yaml'),
  );
  config.listeners[0].port = 0;
  const level = process.env.BENCH_LOG ?? 'info';
  const logger = pino({ level, base: { service: 'dicom-router' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: openSync('/dev/null', 'w'), sync: false }));
  const inspection = createInspection(config, logger);
  // What the statechart does per instance, counted deterministically (unlike time on a shared machine).
  const kinds = new Map<string, number>();
  let counting = false;
  const inspect = (e: Parameters<typeof inspection.inspect>[0]) => {
    if (counting) kinds.set(e.type, (kinds.get(e.type) ?? 0) + 1);
    inspection.inspect(e);
  };
  const router = await startRouter(config, { logger, inspect, watchRules: false });
  await inspection.attach(router);
  const datasets = Array.from({ length: n + 200 }, (_, i) => {
    // One CT series, as a modality sends it.
    return makeInstance({ sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, pixelBytes: 3072, studyInstanceUid: '1.2.826.0.1.3680043.9.7133.2', seriesInstanceUid: '1.2.826.0.1.3680043.9.7133.3', sopInstanceUid: `1.2.826.0.1.3680043.9.7133.1.${i + 1}` });
  });
  const scu = await ScuAssociation.open({
    host: '127.0.0.1', port: router.ports.get('main')!, callingAeTitle: 'BENCH', calledAeTitle: 'DICOM_ROUTER',
    contexts: [{ abstractSyntax: SOP.ct, transferSyntaxes: [TS.explicitLE] }], logger: pino({ level: 'silent' }),
  });
  const context = scu.contextFor(SOP.ct)!;
  const datasetOf = (file: Uint8Array) => file.subarray(132 + 12 + new DataView(file.buffer, file.byteOffset + 140, 4).getUint32(0, true));
  const store = async (i: number) => {
    const outcome = await scu.storeDataset(context.id, SOP.ct, `1.2.826.0.1.3680043.9.7133.1.${i + 1}`, { kind: 'bytes', data: datasetOf(datasets[i]) });
    if (outcome.status !== 0) throw new Error(`router answered ${outcome.status} ${outcome.errorComment ?? outcome.failure ?? ''}`);
  };
  for (let i = 0; i < 200; i++) await store(i); // warm-up
  counting = true;
  const result = await timed(n, async () => {
    for (let i = 200; i < n + 200; i++) await store(i);
  });
  counting = false;
  const perInstance = [...kinds].sort().map(([k, v]) => `${k.replace('@xstate.', '')} ${(v / n).toFixed(1)}`).join(', ');
  await scu.release();
  await inspection.stop();
  await router.stop(0);
  return { ...result, inspection: perInstance };
}

const show = (r: { wall: string; cpu: string }) => `${r.wall.padStart(7)} µs wall, ${r.cpu.padStart(7)} µs CPU`;
console.log(`association/DIMSE micro-benchmark, N=${N}`);
// BENCH_ONLY=router skips the spawn-to-done part (e.g. to profile the router path alone).
if (process.env.BENCH_ONLY !== 'router') {
  console.log(`  C-ECHO SCP transaction, spawn to done:  ${show(await spawnToDone('cEchoScp', N))}`);
  console.log(`  C-STORE SCP transaction, spawn to done: ${show(await spawnToDone('cStoreScp', N))}`);
}
if (process.env.BENCH_ONLY !== 'spawn') {
const r = await storesThroughRouter(N);
console.log(`  C-STORE 4 KB through the in-process router (fsync ${process.env.BENCH_FSYNC === '1' ? 'on' : 'off'}, log ${process.env.BENCH_LOG ?? 'info'}): ${show(r)} per instance (${r.rate} inst/s)`);
console.log(`    inspection events per instance (router and our SCU share no system: the router's only): ${r.inspection}`);
}
