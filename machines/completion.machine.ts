// One series or study waiting for completion under a rule with a `trigger` (issue 8): waiting
// (quiet timer restarted by every new instance, hard limit from the first instance, required series
// guard) → firing (the world's `fire` actor enqueues the whole group in one LMDB transaction) →
// fired. The machine keeps no clock: the actors layer gives it the time left on each timer (computed
// from the durable record, so a restarted router resumes the countdown) and the instants to show.
import { assign, fromPromise, setup } from 'xstate';
import { missingRequired } from '../routing/completion-conditions.ts';
import type { SeriesFact } from '../routing/completion-conditions.ts';
import type { RequiredSeries } from '../routing/rule.types.ts';

export type FireReason = 'quiet' | 'required-series' | 'hard-limit';

export type CompletionInput = {
  /** The durable group's id (actors/jobs/completion.ts). */
  group: string;
  rule: string;
  per: 'series' | 'study';
  studyInstanceUid: string;
  seriesInstanceUid?: string;
  quietMs: number;
  requiredSeries?: RequiredSeries[];
  /** Facts so far (restored from the record, or the first instance's). */
  series: Record<string, SeriesFact>;
  instances: number;
  /** Time left until the quiet time and the hard limit are reached (0 or less: at once). */
  quietLeftMs: number;
  hardLeftMs: number;
  /** ISO 8601 instants of the same, for the inspector. */
  firesAt: string;
  hardLimitAt: string;
};

export type InstanceAdded = { type: 'INSTANCE_ADDED'; at: string; seriesInstanceUid: string; modality?: string; description?: string };

export type FireInput = { group: string; reason: FireReason };
/** What firing did: `fired` false when the group was no longer waiting (another path fired it). */
export type FireOutput = { fired: boolean; forwarded: number; note?: string };

export type CompletionContext = CompletionInput & {
  /** Required series no series matches yet. */
  missing: RequiredSeries[];
  reason?: FireReason;
  result?: FireOutput;
  attempts: number;
  lastError?: string;
};

/** A failed fire (the index unavailable) is tried again after this long; the group stays durable meanwhile. */
export const FIRE_RETRY_MS = 5000;

const later = (a: string, b: string) => (a < b ? a : b);

export const completionMachine = setup({
  types: {
    input: {} as CompletionInput,
    context: {} as CompletionContext,
    events: {} as InstanceAdded,
    output: {} as { reason?: FireReason; result?: FireOutput },
  },
  actors: {
    fire: fromPromise<FireOutput, FireInput>(async () => {
      throw new Error('fire is provided by the actors layer (actors/jobs/completion.ts)');
    }),
  },
  delays: {
    quiet: ({ context }) => Math.max(0, context.quietLeftMs),
    hardLimit: ({ context }) => Math.max(0, context.hardLeftMs),
    retry: FIRE_RETRY_MS,
  },
  guards: {
    allRequiredPresent: ({ context }) => (context.requiredSeries?.length ?? 0) > 0 && context.missing.length === 0,
  },
  actions: {
    recordInstance: assign(({ context, event }) => {
      const prev = context.series[event.seriesInstanceUid];
      const series = {
        ...context.series,
        [event.seriesInstanceUid]: {
          ...(event.modality ?? prev?.modality ? { modality: event.modality ?? prev?.modality } : {}),
          ...(event.description ?? prev?.description ? { description: event.description ?? prev?.description } : {}),
          instances: (prev?.instances ?? 0) + 1,
        },
      };
      const firesAt = later(new Date(Date.parse(event.at) + context.quietMs).toISOString(), context.hardLimitAt);
      return { series, instances: context.instances + 1, quietLeftMs: context.quietMs, firesAt, missing: missingRequired(context.requiredSeries, series) };
    }),
    becauseQuiet: assign({ reason: 'quiet' as const }),
    becauseRequired: assign({ reason: 'required-series' as const }),
    becauseHardLimit: assign({ reason: 'hard-limit' as const }),
    recordResult: assign({ result: ({ event }) => (event as unknown as { output: FireOutput }).output }),
    recordFailure: assign({
      attempts: ({ context }) => context.attempts + 1,
      lastError: ({ event }) => String((event as unknown as { error: unknown }).error),
    }),
  },
}).createMachine({
  id: 'completion',
  context: ({ input }) => ({ ...input, missing: missingRequired(input.requiredSeries, input.series), attempts: 0 }),
  initial: 'waiting',
  states: {
    waiting: {
      always: { guard: 'allRequiredPresent', target: 'firing', actions: 'becauseRequired' },
      after: { hardLimit: { target: 'firing', actions: 'becauseHardLimit' } },
      initial: 'quiet',
      states: {
        quiet: {
          after: { quiet: { target: '#completion.firing', actions: 'becauseQuiet' } },
          on: { INSTANCE_ADDED: { target: 'quiet', reenter: true, actions: 'recordInstance' } },
        },
      },
    },
    firing: {
      invoke: {
        src: 'fire',
        input: ({ context }) => ({ group: context.group, reason: context.reason ?? 'quiet' }),
        onDone: { target: 'fired', actions: 'recordResult' },
        onError: { target: 'retrying', actions: 'recordFailure' },
      },
    },
    retrying: {
      after: { retry: 'firing' },
    },
    fired: { type: 'final' },
  },
  output: ({ context }) => ({ reason: context.reason, result: context.result }),
});
