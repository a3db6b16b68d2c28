import test from 'ava';
import fc from 'fast-check';
import { backoffMs, classifyAssociationFailure, classifyStatus } from '../../../actors/forward/retry-policy.ts';
import type { RetryPolicy } from '../../../actors/forward/retry-policy.ts';

test('backoffMs: doubles from the initial wait, capped, spread by the jitter fraction', (t) => {
  const policy: RetryPolicy = { attempts: 10, initialBackoffMs: 1000, maxBackoffMs: 10_000, jitter: 0.2 };
  const mid = () => 0.5;
  t.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, policy, mid)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  t.is(backoffMs(1, policy, () => 0), 800);
  t.is(backoffMs(2, policy, () => 0.75), 2200);
  t.is(backoffMs(1000, policy, mid), 10_000, 'no overflow for large attempt numbers');
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (n, r, jitter) => {
      const p = { ...policy, jitter };
      const base = Math.min(p.maxBackoffMs, p.initialBackoffMs * 2 ** (n - 1));
      const ms = backoffMs(n, p, () => r);
      return ms >= Math.floor(base * (1 - jitter)) && ms <= Math.ceil(base * (1 + jitter));
    }),
  );
});

test('classifyStatus: success and warnings delivered, A7xx and 0213 retried, other failures dead', (t) => {
  for (const s of [0x0000, 0x0001, 0x0107, 0x0116, 0xb000, 0xb006, 0xb007]) t.is(classifyStatus(s), 'delivered', s.toString(16));
  for (const s of [0xa700, 0xa7ff, 0x0213]) t.is(classifyStatus(s), 'retry', s.toString(16));
  for (const s of [0xa900, 0xa9ff, 0xc000, 0xcfff, 0x0122, 0x0124, 0x0110, 0x0211, 0xa801, 0xff00, 0xfe00]) t.is(classifyStatus(s), 'dead', s.toString(16));
});

test('classifyAssociationFailure: permanent rejects are dead, transient rejects and network errors retried', (t) => {
  t.is(classifyAssociationFailure({ rj: { result: 1, source: 1, reason: 7 } }), 'dead');
  t.is(classifyAssociationFailure(Object.assign(new Error('rejected'), { rj: { result: 2, source: 3, reason: 2 } })), 'retry');
  t.is(classifyAssociationFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'retry');
  t.is(classifyAssociationFailure(new Error('timeout')), 'retry');
  t.is(classifyAssociationFailure(undefined), 'retry');
});
