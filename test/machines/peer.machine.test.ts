import test from 'ava';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import type { AnyActorRef } from 'xstate';
import { peerMachine, reconnectDelayMs } from '../../machines/peer.machine.ts';
import type { PeerActorInput, PeerInput, SendOutcome } from '../../machines/peer.machine.ts';

const IDLE_MS = 5_000;

type Connect = 'ok' | Error | (() => Promise<void>);

/**
 * A fake world: `connects` scripts what each openAssociation does (the last one repeats), `outcomes`
 * is what successive sendNextItem calls resolve with ('empty' once it runs out), or an Error to reject.
 * Fakes settle in microtasks, so one macrotask turn runs the machine to its next wait.
 */
function world(opts: { connects?: Connect[]; outcomes?: (SendOutcome | Error | Promise<SendOutcome>)[]; input?: Partial<PeerInput>; releaseFails?: boolean } = {}) {
  const clock = new SimulatedClock();
  const connects = opts.connects ?? ['ok'];
  const outcomes = [...(opts.outcomes ?? [])];
  const calls: string[] = [];
  /** The association child each effect was given, as the effect saw it (state value, or 'none'). */
  const seen: string[] = [];
  const look = (input: PeerActorInput) => String(input.association?.()?.getSnapshot().value ?? 'none');
  let emptyNextDue: Date | undefined;
  const machine = peerMachine.provide({
    actors: {
      openAssociation: fromPromise<void, PeerActorInput>(async ({ input }) => {
        const n = calls.filter((c) => c === 'open').length;
        calls.push('open');
        seen.push(`open:${look(input)}`);
        if (input.peer !== 'PACS') throw new Error('wrong peer');
        const step = connects[Math.min(n, connects.length - 1)];
        if (step instanceof Error) throw step;
        if (typeof step === 'function') await step();
      }),
      sendNextItem: fromPromise<SendOutcome, PeerActorInput>(async ({ input }) => {
        seen.push(`send:${look(input)}`);
        const next = await outcomes.shift();
        calls.push(next instanceof Error ? 'send:lost' : `send:${next?.outcome ?? 'empty'}`);
        if (next instanceof Error) throw next;
        return next ?? { outcome: 'empty', nextDueAt: emptyNextDue };
      }),
      releaseAssociation: fromPromise<void, PeerActorInput>(async () => {
        calls.push('release');
        if (opts.releaseFails) throw new Error('transport already closed');
      }),
    },
  });
  const actor = createActor(machine, { clock, input: { peer: 'PACS', idleReleaseMs: IDLE_MS, now: () => clock.now(), ...opts.input } });
  actor.start();
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    actor,
    clock,
    calls,
    seen,
    outcomes,
    settle,
    state: () => JSON.stringify(actor.getSnapshot().value).replace(/[{}"]/g, '').replace(':', '.'),
    context: () => actor.getSnapshot().context,
    association: () => actor.getSnapshot().children.association as AnyActorRef | undefined,
    async send(type: 'WORK_AVAILABLE' | 'STOP_REQUESTED' | 'DRAIN_REQUESTED') {
      actor.send({ type });
      await settle();
    },
    async advance(ms: number) {
      clock.increment(ms);
      await settle();
    },
    setEmptyNextDue(d: Date | undefined) {
      emptyNextDue = d;
    },
  };
}

const delivered = (id: string): SendOutcome => ({ outcome: 'delivered', id });

test('happy path: work → connect → send every due item → wait → release after the idle timeout', async (t) => {
  const w = world({ outcomes: [delivered('a'), delivered('b'), delivered('c')] });
  t.is(w.state(), 'idle');
  await w.send('WORK_AVAILABLE');
  t.deepEqual(w.calls, ['open', 'send:delivered', 'send:delivered', 'send:delivered', 'send:empty']);
  t.is(w.state(), 'connected.waiting');
  t.like(w.context(), { delivered: 3, failed: 0, consecutiveFailures: 0, circuit: 'closed' });
  await w.advance(IDLE_MS - 1);
  t.is(w.state(), 'connected.waiting');
  await w.advance(1);
  t.is(w.state(), 'idle');
  t.deepEqual(w.calls.slice(-1), ['release']);
});

test('new work while the association waits is sent on it, and restarts the idle timer', async (t) => {
  const w = world();
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'connected.waiting');
  await w.advance(IDLE_MS - 100);
  w.outcomes.push(delivered('late'));
  await w.send('WORK_AVAILABLE');
  t.deepEqual(w.calls, ['open', 'send:empty', 'send:delivered', 'send:empty']);
  await w.advance(IDLE_MS - 1);
  t.is(w.state(), 'connected.waiting');
  await w.advance(1);
  t.is(w.state(), 'idle');
  t.is(w.calls.filter((c) => c === 'open').length, 1, 'one association for all of it');
});

test('WORK_AVAILABLE while sending or connecting changes nothing; while releasing, it reconnects afterwards', async (t) => {
  let finishConnect!: () => void;
  let finishRelease!: () => void;
  const w = world({ connects: [() => new Promise<void>((r) => (finishConnect = r))] });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'connecting');
  await w.send('WORK_AVAILABLE');
  t.is(w.calls.filter((c) => c === 'open').length, 1);
  finishConnect();
  await w.settle();
  t.is(w.state(), 'connected.waiting');

  const slow = peerMachine.provide({
    actors: {
      openAssociation: fromPromise(async () => {}),
      sendNextItem: fromPromise<SendOutcome, PeerActorInput>(async () => ({ outcome: 'empty' })),
      releaseAssociation: fromPromise(() => new Promise<void>((r) => (finishRelease = r))),
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(slow, { clock, input: { peer: 'PACS', idleReleaseMs: 10, now: () => clock.now() } }).start();
  actor.send({ type: 'WORK_AVAILABLE' });
  await w.settle();
  clock.increment(10);
  t.is(actor.getSnapshot().value, 'releasing');
  actor.send({ type: 'WORK_AVAILABLE' });
  finishRelease();
  await w.settle();
  t.deepEqual(actor.getSnapshot().value, { connected: 'waiting' });
});

test('association failure: back off, then reconnect; the delay doubles per consecutive failure', async (t) => {
  const refused = new Error('connect ECONNREFUSED 127.0.0.1:11112');
  const w = world({ connects: [refused, refused, 'ok'], outcomes: [delivered('a')], input: { backoffInitialMs: 1000, backoffMaxMs: 60_000 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  t.like(w.context(), { consecutiveFailures: 1, associationFailures: 1, lastError: refused.message, backoffUntil: new Date(1000).toISOString() });
  await w.advance(999);
  t.is(w.state(), 'backingOff');
  await w.advance(1);
  t.is(w.state(), 'backingOff');
  t.like(w.context(), { consecutiveFailures: 2, backoffUntil: new Date(3000).toISOString() });
  await w.advance(1999);
  t.is(w.calls.filter((c) => c === 'open').length, 2);
  await w.advance(1);
  t.is(w.state(), 'connected.waiting');
  t.like(w.context(), { delivered: 1, consecutiveFailures: 0, associationFailures: 2, backoffUntil: undefined });
  t.deepEqual(w.calls, ['open', 'open', 'open', 'send:delivered', 'send:empty']);
});

test('WORK_AVAILABLE while backing off does not bypass the backoff', async (t) => {
  const w = world({ connects: [new Error('ETIMEDOUT'), 'ok'] });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  await w.send('WORK_AVAILABLE');
  await w.advance(500);
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  t.is(w.calls.length, 1);
  await w.advance(500);
  t.is(w.state(), 'connected.waiting');
});

test('threshold consecutive failures open the circuit; after circuitOpenMs one half-open try; success closes it', async (t) => {
  const down = new Error('connect ECONNREFUSED');
  const w = world({ connects: [down, down, down, down, 'ok'], outcomes: [delivered('a')], input: { circuitThreshold: 3, circuitOpenMs: 30_000 } });
  await w.send('WORK_AVAILABLE'); // failure 1
  await w.advance(1000); // failure 2
  t.is(w.state(), 'backingOff');
  await w.advance(2000); // failure 3: threshold
  t.is(w.state(), 'circuitOpen');
  t.like(w.context(), { circuit: 'open', consecutiveFailures: 3, backoffUntil: new Date(33_000).toISOString() });
  await w.send('WORK_AVAILABLE');
  await w.advance(29_999);
  t.is(w.calls.length, 3, 'no tries while the circuit is open');
  await w.advance(1); // half-open try fails: open again at once
  t.is(w.state(), 'circuitOpen');
  t.like(w.context(), { circuit: 'open', consecutiveFailures: 4 });
  await w.advance(30_000); // half-open try succeeds
  t.is(w.state(), 'connected.waiting');
  t.like(w.context(), { circuit: 'closed', consecutiveFailures: 0, delivered: 1 });
});

test('a permanent reject does not back off or open the circuit: the peer waits, idle, for new work', async (t) => {
  // The actors layer made the due items dead letters (no retry can change the answer); new work tries again.
  const rejected = Object.assign(new Error('association rejected: rejected-permanent, source 1, reason 7'), { retryable: false });
  const w = world({ connects: [rejected, rejected], input: { circuitOpenMs: 10_000, circuitThreshold: 2 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'idle');
  t.like(w.context(), { circuit: 'closed', consecutiveFailures: 0, associationFailures: 1, lastError: rejected.message, backoffUntil: undefined });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'idle', 'the threshold counts unreachable peers, not answers');
  t.deepEqual(w.calls, ['open', 'open']);
});

test('a transient reject backs off with the configured reconnect backoff', async (t) => {
  const rejected = Object.assign(new Error('association rejected: rejected-transient, source 3, reason 2'), { retryable: true });
  const w = world({ connects: [rejected, rejected, rejected], input: { backoffInitialMs: 300, backoffMaxMs: 500, circuitThreshold: 10 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  await w.advance(299);
  t.is(w.state(), 'backingOff');
  await w.advance(1);
  t.is(w.state(), 'backingOff', 'second failure');
  t.is(w.context().consecutiveFailures, 2);
  await w.advance(499);
  t.deepEqual(w.calls, ['open', 'open']);
  await w.advance(1);
  t.deepEqual(w.calls, ['open', 'open', 'open'], 'capped at backoffMaxMs (500), not 600');
});

test('releaseAfterBatch (an exclusive peer): the association is released as soon as the batch is sent', async (t) => {
  const w = world({ outcomes: [delivered('a')], input: { releaseAfterBatch: true, idleReleaseMs: 60_000 } });
  await w.send('WORK_AVAILABLE');
  t.deepEqual(w.calls, ['open', 'send:delivered', 'send:empty', 'release']);
  t.is(w.state(), 'idle');
});

test('the circuit is half-open while the try connects, and closes once the association proves useful', async (t) => {
  let finish!: () => void;
  const w = world({ connects: [new Error('down'), () => new Promise<void>((r) => (finish = r))], input: { circuitThreshold: 1, circuitOpenMs: 100 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'circuitOpen');
  await w.advance(100);
  t.is(w.state(), 'connecting');
  t.like(w.context(), { circuit: 'halfOpen', backoffUntil: undefined });
  finish();
  await w.settle();
  t.like(w.context(), { circuit: 'closed', consecutiveFailures: 0 });
});

test('item retry and dead outcomes are counted and the next item is sent', async (t) => {
  const w = world({
    outcomes: [
      { outcome: 'retry', id: 'a', error: 'A700 Out of Resources' },
      { outcome: 'dead', id: 'b', error: 'A900 Data Set does not match SOP Class' },
      delivered('c'),
    ],
  });
  await w.send('WORK_AVAILABLE');
  t.deepEqual(w.calls, ['open', 'send:retry', 'send:dead', 'send:delivered', 'send:empty']);
  t.like(w.context(), { delivered: 1, failed: 2, deadLettered: 1, consecutiveFailures: 0, lastError: 'A900 Data Set does not match SOP Class' });
  t.is(w.state(), 'connected.waiting');
});

test('an association lost while sending counts as a failure and backs off; one lost while waiting does not', async (t) => {
  const w = world({ outcomes: [delivered('a'), new Error('ECONNRESET')] });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  t.like(w.context(), { delivered: 1, consecutiveFailures: 1, lastError: 'ECONNRESET' });
  await w.advance(1000);
  t.is(w.state(), 'connected.waiting');
  w.actor.send({ type: 'ASSOCIATION_LOST', error: 'peer released the idle association' });
  t.is(w.state(), 'idle');
  t.like(w.context(), { consecutiveFailures: 0, associationFailures: 1 });
});

test('items backing off in the queue: wait on the open association until due, or reconnect when due after release', async (t) => {
  const w = world({ outcomes: [{ outcome: 'retry', id: 'a' }] });
  w.setEmptyNextDue(new Date(2000));
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'connected.waiting');
  t.is(w.context().nextDueAt, new Date(2000).toISOString());
  w.outcomes.push(delivered('a'));
  w.setEmptyNextDue(new Date(20_000)); // due after the idle timeout
  await w.advance(2000);
  t.deepEqual(w.calls, ['open', 'send:retry', 'send:empty', 'send:delivered', 'send:empty']);
  await w.advance(IDLE_MS);
  t.is(w.state(), 'idle');
  t.is(w.calls.at(-1), 'release');
  w.setEmptyNextDue(undefined);
  await w.advance(20_000 - 7000 - 1);
  t.is(w.state(), 'idle');
  await w.advance(1);
  t.is(w.state(), 'connected.waiting');
  t.deepEqual(w.calls.slice(-3), ['release', 'open', 'send:empty']);
  await w.advance(IDLE_MS);
  t.is(w.state(), 'idle');
  await w.advance(10 * 60_000);
  t.is(w.state(), 'idle', 'nothing due, nothing to do');
});

test('a failing release still ends in idle, with the error recorded', async (t) => {
  const w = world({ releaseFails: true });
  await w.send('WORK_AVAILABLE');
  await w.advance(IDLE_MS);
  t.is(w.state(), 'idle');
  t.is(w.context().lastError, 'release failed: transport already closed');
});

test('STOP_REQUESTED releases an open association first; elsewhere it stops at once', async (t) => {
  const w = world();
  await w.send('WORK_AVAILABLE');
  await w.send('STOP_REQUESTED');
  t.is(w.state(), 'stopped');
  t.is(w.actor.getSnapshot().status, 'done');
  t.deepEqual(w.calls, ['open', 'send:empty', 'release']);

  const idle = world();
  await idle.send('STOP_REQUESTED');
  t.is(idle.state(), 'stopped');
  t.deepEqual(idle.calls, []);
});

test('without provided effects the machine fails loudly instead of sending nothing quietly', async (t) => {
  const clock = new SimulatedClock();
  const actor = createActor(peerMachine, { clock, input: { peer: 'PACS', idleReleaseMs: 1000, now: () => clock.now() } }).start();
  actor.send({ type: 'WORK_AVAILABLE' });
  await new Promise((r) => setImmediate(r));
  t.is(actor.getSnapshot().value, 'backingOff');
  t.is(actor.getSnapshot().context.lastError, 'openAssociation is not provided to the peer machine');
});

test('reconnectDelayMs doubles and is capped', (t) => {
  const c = { backoffInitialMs: 500, backoffMaxMs: 3000 };
  t.deepEqual([0, 1, 2, 3, 4, 100].map((n) => reconnectDelayMs({ ...c, consecutiveFailures: n })), [500, 500, 1000, 2000, 3000, 3000]);
});

/** A promise settled from the test. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('the association is a child of the peer machine: spawned fresh on connect, given to the effects, stopped once idle', async (t) => {
  const w = world({ outcomes: [delivered('a')] });
  t.is(w.association(), undefined);
  await w.send('WORK_AVAILABLE');
  const first = w.association();
  t.truthy(first);
  t.is((first as unknown as { logic: { config: { id: string } } }).logic.config.id, 'association');
  // The effects see the child (in Sta1: the fakes open no transport).
  t.deepEqual(w.seen, ['open:Sta1', 'send:Sta1', 'send:Sta1']);
  await w.advance(IDLE_MS);
  t.is(w.state(), 'idle');
  t.is(w.association(), undefined, 'released: the association left the tree');
  t.is(first!.getSnapshot().status, 'stopped');
  await w.send('WORK_AVAILABLE');
  t.truthy(w.association());
  t.not(w.association()!.sessionId, first!.sessionId, 'a new association gets a new machine');
});

test('a failed connect stops its association child; backing off and an open circuit have none', async (t) => {
  const w = world({ connects: [new Error('ECONNREFUSED'), 'ok'], input: { circuitThreshold: 5 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  t.is(w.association(), undefined);
  await w.advance(1000);
  t.is(w.state(), 'connected.waiting');
  t.truthy(w.association());
});

test('RECONNECT_NEEDED (the item needs another association): release, then connect again with a new child, and send it', async (t) => {
  const w = world({ outcomes: [delivered('a'), { outcome: 'reconnect', id: 'b' }, delivered('b')] });
  await w.send('WORK_AVAILABLE');
  t.deepEqual(w.calls, ['open', 'send:delivered', 'send:reconnect', 'release', 'open', 'send:delivered', 'send:empty']);
  t.is(w.state(), 'connected.waiting');
  t.like(w.context(), { delivered: 2, failed: 0, associationFailures: 0 });
});

test('DRAIN_REQUESTED while a C-STORE is in flight: it finishes and is counted, no next item is started, then release and stop', async (t) => {
  const inFlight = deferred<SendOutcome>();
  const w = world({ outcomes: [inFlight.promise, delivered('never-sent')] });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'connected.sending');
  await w.send('DRAIN_REQUESTED');
  t.is(w.state(), 'connected.sending', 'the item in flight is not cut');
  inFlight.resolve(delivered('a'));
  await w.settle();
  t.is(w.state(), 'stopped');
  t.is(w.actor.getSnapshot().status, 'done');
  t.like(w.context(), { delivered: 1 });
  t.deepEqual(w.calls, ['open', 'send:delivered', 'release']);
  t.is(w.outcomes.length, 1, 'the next item was not taken');
});

test('DRAIN_REQUESTED elsewhere: idle and backing off stop at once; waiting releases first; connecting lets the attempt end', async (t) => {
  const idle = world();
  await idle.send('DRAIN_REQUESTED');
  t.is(idle.state(), 'stopped');
  t.deepEqual(idle.calls, []);

  const waiting = world();
  await waiting.send('WORK_AVAILABLE');
  await waiting.send('DRAIN_REQUESTED');
  t.is(waiting.state(), 'stopped');
  t.deepEqual(waiting.calls, ['open', 'send:empty', 'release']);

  const backingOff = world({ connects: [new Error('ECONNREFUSED')] });
  await backingOff.send('WORK_AVAILABLE');
  await backingOff.send('DRAIN_REQUESTED');
  t.is(backingOff.state(), 'stopped');

  const opening = deferred<void>();
  const connecting = world({ connects: [() => opening.promise] });
  await connecting.send('WORK_AVAILABLE');
  await connecting.send('DRAIN_REQUESTED');
  t.is(connecting.state(), 'connecting');
  opening.resolve();
  await connecting.settle();
  t.is(connecting.state(), 'stopped');
  t.deepEqual(connecting.calls, ['open', 'release'], 'established during the drain: released, nothing sent');
});

test('RETRY_REQUESTED (an operator retried) ends a backoff or an open circuit at once; WORK_AVAILABLE does not', async (t) => {
  const w = world({ connects: [new Error('down'), new Error('down'), 'ok'], input: { circuitThreshold: 2, circuitOpenMs: 60_000, backoffInitialMs: 30_000 } });
  await w.send('WORK_AVAILABLE');
  t.is(w.state(), 'backingOff');
  w.actor.send({ type: 'WORK_AVAILABLE' });
  await w.settle();
  t.is(w.state(), 'backingOff', 'new work waits out the backoff');
  w.actor.send({ type: 'RETRY_REQUESTED' });
  await w.settle();
  t.is(w.state(), 'circuitOpen', 'tried at once; the second failure opens the circuit');
  w.actor.send({ type: 'RETRY_REQUESTED' });
  await w.settle();
  t.deepEqual(w.calls.filter((c) => c === 'open').length, 3, 'tried again at once, half-open');
  t.like(w.context(), { circuit: 'closed' });
});
