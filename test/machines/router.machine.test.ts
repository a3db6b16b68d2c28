import test from 'ava';
import { createActor, createMachine, fromPromise } from 'xstate';
import { routerMachine } from '../../machines/router.machine.ts';

const emptyRouter = () => createActor(routerMachine, { input: { listeners: [], peers: [] } }).start();

test('a started job becomes a child of the root, with its input, and leaves when it ends', (t) => {
  const root = emptyRouter();
  const job = createMachine({ types: {} as { input: { n: number }; context: { n: number } }, context: ({ input }) => ({ n: input.n }), initial: 'waiting', states: { waiting: {} } });
  root.send({ type: 'JOB_STARTED', id: 'prefetch-1', logic: job, input: { n: 7 } });
  const child = root.getSnapshot().children['prefetch-1'];
  t.truthy(child);
  t.is((child!.getSnapshot() as unknown as { context: { n: number } }).context.n, 7);
  t.is(child!.system, root.system, 'the job is in the root system, so the inspector sees it');
  root.send({ type: 'JOB_ENDED', id: 'prefetch-1' });
  t.is(root.getSnapshot().children['prefetch-1'], undefined);
  root.stop();
});

test('a second start of the same job id keeps the running one', async (t) => {
  const root = emptyRouter();
  let started = 0;
  const job = fromPromise(async () => {
    started += 1;
    await new Promise(() => {});
  });
  root.send({ type: 'JOB_STARTED', id: 'j', logic: job });
  root.send({ type: 'JOB_STARTED', id: 'j', logic: job });
  await Promise.resolve();
  t.is(started, 1);
  root.stop();
});
