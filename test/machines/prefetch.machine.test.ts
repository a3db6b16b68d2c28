// The prefetch job machine with its C-FIND and C-MOVE steps provided by the test: the path
// querying → selecting → moving each prior → done | partiallyFailed | failed, retries with backoff,
// permanent failures, a job resumed from its recorded priors, and the destination check step.
import test from 'ava';
import { createActor, fromPromise, SimulatedClock, waitFor } from 'xstate';
import { PrefetchStepError, prefetchMachine, retryDelayMs } from '../../machines/prefetch.machine.ts';
import type { CountAtDestinationOutput, FindPriorsOutput, MovePriorOutput, PrefetchInput, PriorStep } from '../../machines/prefetch.machine.ts';

const job: PrefetchInput['job'] = {
  id: 'j1', rule: 'r', patientId: 'P1', triggeringStudy: 'T', createdAt: '2025-06-01T00:00:00.000Z',
  action: { archive: 'A', destination: 'WS', queryModel: 'study-root', excludeTriggeringStudy: true, max: 2, dedupHours: 24, modalities: ['CT'] },
};
const retry = { attempts: 3, initialBackoffMs: 1000, maxBackoffMs: 1500 };
const match = (uid: string, date: string, mods = 'CT') => ({ StudyInstanceUID: uid, StudyDate: date, ModalitiesInStudy: mods });

function machine(find: () => Promise<FindPriorsOutput>, move: (prior: PriorStep) => Promise<MovePriorOutput>, extra: Partial<PrefetchInput> = {}, clock?: SimulatedClock) {
  const moved: string[] = [];
  const logic = prefetchMachine.provide({
    actors: {
      findPriors: fromPromise(find),
      movePrior: fromPromise(async ({ input }: { input: { job: PrefetchInput['job']; prior: PriorStep } }) => {
        moved.push(input.prior.studyInstanceUid);
        return move(input.prior);
      }),
    },
  });
  const actor = createActor(logic, { input: { job, retry, ...extra }, ...(clock ? { clock } : {}) }).start();
  return { actor, moved };
}
const settled = (actor: ReturnType<typeof machine>['actor']) => waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });

test('query, select (trigger, modality, newest first, max) and move each: done', async (t) => {
  const { actor, moved } = machine(
    async () => ({ matches: [match('T', '20250601'), match('old', '20200101'), match('new', '20250101'), match('mid', '20230101'), match('us', '20250301', 'US'), { PatientID: 'no uid' }] }),
    async () => ({ state: 'moved', status: 0 }),
  );
  const s = await settled(actor);
  t.is(s.value, 'done');
  t.deepEqual(moved, ['new', 'mid']);
  t.is(s.context.found, 5);
  t.deepEqual(s.context.priors!.map((p) => p.state), ['moved', 'moved']);
  t.deepEqual(s.context.left!.map((l) => l.studyInstanceUid).sort(), ['T', 'old', 'us']);
});

test('no priors at all: done without moving', async (t) => {
  const { actor, moved } = machine(async () => ({ matches: [] }), async () => ({ state: 'moved' }));
  t.is((await settled(actor)).value, 'done');
  t.deepEqual(moved, []);
});

test('a B000 prior makes the job partiallyFailed; all priors failed makes it failed', async (t) => {
  const matches = { matches: [match('a', '20250101'), match('b', '20240101')] };
  const partial = machine(async () => matches, async (p) => (p.studyInstanceUid === 'a' ? { state: 'moved' } : { state: 'partial', status: 0xb000, reason: '1 failed' }));
  const s = await settled(partial.actor);
  t.is(s.value, 'partiallyFailed');
  t.is(s.context.reason, 'b: 1 failed');
  const failed = machine(async () => matches, async () => ({ state: 'failed', status: 0xa801, reason: 'Move Destination Unknown' }));
  t.is((await settled(failed.actor)).value, 'failed');
});

test('a retryable C-FIND failure waits the backoff and tries again; the last attempt fails the job with its reason', async (t) => {
  const clock = new SimulatedClock();
  let calls = 0;
  const { actor } = machine(async () => {
    calls++;
    throw new PrefetchStepError('ECONNREFUSED', true);
  }, async () => ({ state: 'moved' }), {}, clock);
  await new Promise((r) => setTimeout(r, 10));
  t.is(actor.getSnapshot().value, 'waitingToRetry');
  t.is(actor.getSnapshot().context.attempts, 1);
  clock.increment(999);
  await new Promise((r) => setTimeout(r, 10));
  t.is(calls, 1);
  clock.increment(1);
  await new Promise((r) => setTimeout(r, 10));
  t.is(calls, 2);
  clock.increment(1500);
  const s = await settled(actor);
  t.is(calls, 3);
  t.is(s.value, 'failed');
  t.is(s.context.attempts, 3);
  t.is(s.context.reason, 'ECONNREFUSED');
});

test('a permanent failure (A900 on C-FIND) fails at once', async (t) => {
  const { actor } = machine(async () => {
    throw new PrefetchStepError('C-FIND failed: 0xA900 Identifier Does Not Match SOP Class', false);
  }, async () => ({ state: 'moved' }));
  const s = await settled(actor);
  t.is(s.value, 'failed');
  t.is(s.context.attempts, 0);
  t.regex(s.context.reason!, /A900/);
});

test('a retry during the moves keeps the moved priors; a job restored with priors resumes at the first pending one', async (t) => {
  const clock = new SimulatedClock();
  let fail = true;
  const { actor, moved } = machine(async () => ({ matches: [match('a', '20250101'), match('b', '20240101')] }), async (p) => {
    if (p.studyInstanceUid === 'b' && fail) {
      fail = false;
      throw new PrefetchStepError('timeout', true);
    }
    return { state: 'moved' };
  }, {}, clock);
  await new Promise((r) => setTimeout(r, 10));
  t.is(actor.getSnapshot().value, 'waitingToRetry');
  clock.increment(1000);
  const s = await settled(actor);
  t.is(s.value, 'done');
  t.deepEqual(moved, ['a', 'b', 'b'], 'a is not moved again after the retry');

  const restored = machine(async () => {
    throw new Error('no query on resume');
  }, async () => ({ state: 'moved' }), { priors: [{ studyInstanceUid: 'x', modalities: [], state: 'moved' }, { studyInstanceUid: 'y', modalities: [], state: 'pending' }], attempts: 1 });
  const r = await settled(restored.actor);
  t.is(r.value, 'done');
  t.deepEqual(restored.moved, ['y']);
});

test('retry delay: exponential, capped', (t) => {
  t.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs({ attempts: 9, initialBackoffMs: 100, maxBackoffMs: 500 }, n)), [100, 200, 400, 500]);
});

// The destination check (skipIfDestinationHas): a prior the destination holds in full is skipped;
// no C-FIND there turns the check off for the job; a failed check moves the prior.
const checkJob: PrefetchInput['job'] = { ...job, action: { ...job.action, max: 5, skipIfDestinationHas: 'WSQR' } };
const counted = (uid: string, date: string, instances?: number) => ({ ...match(uid, date), ...(instances !== undefined ? { NumberOfStudyRelatedInstances: instances } : {}) });

function checkedMachine(matches: Record<string, unknown>[], count: (prior: PriorStep) => Promise<CountAtDestinationOutput>) {
  const moved: string[] = [];
  const asked: string[] = [];
  const logic = prefetchMachine.provide({
    actors: {
      findPriors: fromPromise(async (): Promise<FindPriorsOutput> => ({ matches })),
      movePrior: fromPromise(async ({ input }: { input: { job: PrefetchInput['job']; prior: PriorStep } }): Promise<MovePriorOutput> => {
        moved.push(input.prior.studyInstanceUid);
        return { state: 'moved' };
      }),
      countAtDestination: fromPromise(async ({ input }: { input: { job: PrefetchInput['job']; prior: PriorStep } }) => {
        asked.push(input.prior.studyInstanceUid);
        return count(input.prior);
      }),
    },
  });
  return { actor: createActor(logic, { input: { job: checkJob, retry } }).start(), moved, asked };
}

test('destination check: a prior held in full is skipped, one held in part is moved; each step is noted', async (t) => {
  const { actor, moved, asked } = checkedMachine([counted('a', '20250101', 12), counted('b', '20240101', 5), counted('c', '20230101', 4)], async (p) =>
    ({ count: p.studyInstanceUid === 'a' ? 12 : p.studyInstanceUid === 'b' ? 3 : 0 }));
  const s = await settled(actor);
  t.is(s.value, 'done');
  t.deepEqual(asked, ['a', 'b', 'c']);
  t.deepEqual(moved, ['b', 'c']);
  t.deepEqual(s.context.priors!.map((p) => [p.studyInstanceUid, p.state, p.reason]), [['a', 'skipped', 'destination holds 12 of 12 instances'], ['b', 'moved', undefined], ['c', 'moved', undefined]]);
  t.deepEqual(s.context.notes, ['prior b: destination holds 3 of 5 instances, moving', 'prior c: destination holds 0 of 4 instances, moving']);
});

test('destination check off (no C-FIND there): noted once, not asked again, everything moved', async (t) => {
  const { actor, moved, asked } = checkedMachine([counted('a', '20250101', 2), counted('b', '20240101', 2)], async () => ({ off: 'WSQR accepted no Study Root C-FIND presentation context' }));
  const s = await settled(actor);
  t.is(s.value, 'done');
  t.deepEqual(asked, ['a']);
  t.deepEqual(moved, ['a', 'b']);
  t.is(s.context.destinationCheckOff, 'WSQR accepted no Study Root C-FIND presentation context');
  t.deepEqual(s.context.notes, ['destination check off for this job: WSQR accepted no Study Root C-FIND presentation context; every prior is moved']);
});

test('a check that fails (count not known) moves the prior; the archive without counts: moved unchecked', async (t) => {
  const failing = checkedMachine([counted('a', '20250101', 2), counted('b', '20240101', 2)], async (p) => {
    if (p.studyInstanceUid === 'a') throw new PrefetchStepError('ECONNREFUSED', true);
    return { count: 2 };
  });
  const s = await settled(failing.actor);
  t.is(s.value, 'done');
  t.deepEqual(failing.moved, ['a']);
  t.deepEqual(s.context.priors!.map((p) => p.state), ['moved', 'skipped']);
  t.deepEqual(s.context.notes, ['prior a: destination count not known (ECONNREFUSED), moving']);
  t.is(s.context.attempts, 0, 'a failed check is not a failed attempt');

  const uncounted = checkedMachine([counted('a', '20250101')], async () => ({ count: 99 }));
  const u = await settled(uncounted.actor);
  t.deepEqual(uncounted.asked, []);
  t.deepEqual(uncounted.moved, ['a']);
  t.deepEqual(u.context.notes, ['prior a: the archive did not return NumberOfStudyRelatedInstances, moving without asking the destination']);
});

test('without skipIfDestinationHas the destination is never asked', async (t) => {
  let asked = 0;
  const logic = prefetchMachine.provide({
    actors: {
      findPriors: fromPromise(async (): Promise<FindPriorsOutput> => ({ matches: [counted('a', '20250101', 3)] })),
      movePrior: fromPromise(async (): Promise<MovePriorOutput> => ({ state: 'moved' })),
      countAtDestination: fromPromise(async (): Promise<CountAtDestinationOutput> => {
        asked++;
        return { count: 3 };
      }),
    },
  });
  const s = await settled(createActor(logic, { input: { job, retry } }).start());
  t.is(s.value, 'done');
  t.is(asked, 0);
  t.deepEqual(s.context.notes, []);
});
