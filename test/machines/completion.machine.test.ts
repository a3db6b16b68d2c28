// The completion machine on a simulated clock: the quiet time restarted by each instance, the hard
// limit from the first, required series firing at once, a group restored with little time left, and
// a fire that fails being tried again.
import test from 'ava';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { completionMachine, FIRE_RETRY_MS } from '../../machines/completion.machine.ts';
import type { CompletionInput, FireInput, FireOutput, FireReason } from '../../machines/completion.machine.ts';

const T0 = '2025-06-01T10:00:00.000Z';
const base: CompletionInput = {
  group: 'completion:r:1.2.3', rule: 'r', per: 'study', studyInstanceUid: '1.2.3', quietMs: 3000,
  series: { s1: { modality: 'CT', instances: 1 } }, instances: 1, quietLeftMs: 3000, hardLeftMs: 10_000,
  firesAt: '2025-06-01T10:00:03.000Z', hardLimitAt: '2025-06-01T10:00:10.000Z',
};

function start(input: Partial<CompletionInput>, fire: (i: FireInput) => Promise<FireOutput> = async () => ({ fired: true, forwarded: 1 })) {
  const clock = new SimulatedClock();
  const fired: FireReason[] = [];
  const logic = completionMachine.provide({
    actors: { fire: fromPromise<FireOutput, FireInput>(async ({ input: i }) => { fired.push(i.reason); return fire(i); }) },
  });
  const actor = createActor(logic, { input: { ...base, ...input }, clock }).start();
  return { actor, clock, fired };
}
const tick = () => new Promise((r) => setImmediate(r));
const add = (series: string, at: string, modality = 'CT', description?: string) =>
  ({ type: 'INSTANCE_ADDED' as const, at, seriesInstanceUid: series, modality, ...(description ? { description } : {}) });

test('fires after the quiet time; every instance restarts it', async (t) => {
  const { actor, clock, fired } = start({});
  clock.increment(2000);
  actor.send(add('s2', '2025-06-01T10:00:02.000Z'));
  t.is(actor.getSnapshot().context.firesAt, '2025-06-01T10:00:05.000Z');
  t.is(actor.getSnapshot().context.instances, 2);
  clock.increment(2999);
  await tick();
  t.deepEqual(fired, [], 'quiet time restarted by the new instance');
  clock.increment(1);
  await tick();
  t.deepEqual(fired, ['quiet']);
  await tick();
  t.is(actor.getSnapshot().value, 'fired');
  t.deepEqual(actor.getSnapshot().output, { reason: 'quiet', result: { fired: true, forwarded: 1 } });
});

test('the hard limit fires even while instances keep coming', async (t) => {
  const { actor, clock, fired } = start({ hardLeftMs: 5000 });
  for (let i = 1; i <= 5; i++) {
    clock.increment(1000);
    actor.send(add('s1', new Date(Date.parse(T0) + i * 1000).toISOString()));
    await tick();
  }
  t.deepEqual(fired, ['hard-limit']);
  t.is(actor.getSnapshot().context.reason, 'hard-limit');
});

test('required series: complete as soon as each has arrived, without the quiet wait', async (t) => {
  const { actor, clock, fired } = start({ requiredSeries: [{ modality: 'SR' }, { seriesDescription: 'AX T2*' }] });
  t.is(actor.getSnapshot().context.missing.length, 2);
  actor.send(add('s2', T0, 'SR'));
  await tick();
  t.deepEqual(actor.getSnapshot().context.missing, [{ seriesDescription: 'AX T2*' }]);
  t.deepEqual(fired, []);
  clock.increment(100);
  actor.send(add('s3', T0, 'MR', 'AX T2 FLAIR'));
  await tick();
  t.deepEqual(fired, ['required-series']);
});

test('a group restored with its time already past fires at once; one restored with the required series present too', async (t) => {
  const late = start({ quietLeftMs: -5000 });
  late.clock.increment(0);
  await tick();
  t.deepEqual(late.fired, ['quiet']);
  const present = start({ requiredSeries: [{ modality: 'CT' }] });
  await tick();
  t.deepEqual(present.fired, ['required-series']);
});

test('a fire that fails is tried again after a pause, and instances meanwhile change nothing', async (t) => {
  let calls = 0;
  const { actor, clock, fired } = start({ quietLeftMs: 0 }, async () => {
    if (++calls === 1) throw new Error('index unavailable');
    return { fired: true, forwarded: 3 };
  });
  clock.increment(0);
  await tick();
  await tick();
  t.is(actor.getSnapshot().value, 'retrying');
  t.is(actor.getSnapshot().context.lastError, 'Error: index unavailable');
  actor.send(add('s9', T0));
  t.is(actor.getSnapshot().context.instances, 1);
  clock.increment(FIRE_RETRY_MS);
  await tick();
  await tick();
  t.is(actor.getSnapshot().value, 'fired');
  t.deepEqual(fired, ['quiet', 'quiet']);
  t.is(actor.getSnapshot().context.attempts, 1);
});
