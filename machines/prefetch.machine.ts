// One prefetch job per (patient, triggering study): querying the archive for the patient's studies →
// selecting the priors → moving each → done | partiallyFailed | failed. The C-FIND and each C-MOVE
// are invoked actors the world provides (actors/jobs/prefetch.ts). A retryable failure (the archive
// unreachable, a timeout, A7xx out of resources) waits per the archive's retry policy and resumes
// where the job stood (priors already moved stay moved); after the last attempt the job is failed
// with its reason. A job restored from LMDB starts from its recorded priors.
// With `skipIfDestinationHas`, each prior is first counted at the destination (checkingDestination,
// the provided countAtDestination actor): a prior the destination holds in full is skipped. A
// destination without C-FIND turns the check off for the job; a check that fails otherwise leaves
// the count unknown and the prior is moved (a redundant move is harmless, a missing prior is not).
import { assign, fromPromise, setup } from 'xstate';
import type { SubOperations } from './dimse/dimse.events.ts';
import type { PrefetchAction } from '../routing/rule.types.ts';
import { candidateOf, selectPriors } from '../routing/prefetch-select.ts';
import type { PriorCandidate, Selection, SelectionTemplates } from '../routing/prefetch-select.ts';

export type PriorState = 'pending' | 'moved' | 'partial' | 'failed' | 'skipped';

export type PriorStep = PriorCandidate & {
  state: PriorState;
  status?: number;
  reason?: string;
  suboperations?: SubOperations;
};

/** What a job is about; fixed when the job is planned. */
export type PrefetchJobSpec = {
  id: string;
  rule: string;
  action: PrefetchAction;
  patientId: string;
  issuerOfPatientId?: string;
  triggeringStudy: string;
  /** ISO 8601: when the study's first instance was committed. */
  createdAt: string;
  /** The selection fields as the rule wrote them, when they had {{Keyword}} placeholders (`action` has them resolved). */
  templates?: SelectionTemplates;
};

export type PrefetchRetry = { attempts: number; initialBackoffMs: number; maxBackoffMs: number };

export type PrefetchInput = {
  job: PrefetchJobSpec;
  retry: PrefetchRetry;
  /** Restored from LMDB: the priors as recorded, and the failed attempts so far. */
  priors?: PriorStep[];
  attempts?: number;
};

export type FindPriorsOutput = { matches: Record<string, unknown>[] };
export type MovePriorOutput = { state: Exclude<PriorState, 'pending'>; status?: number; reason?: string; suboperations?: SubOperations };
/**
 * What the destination holds of a prior: `count` instances (`how` it was counted), or `off` when
 * it cannot be asked at all (no Study Root C-FIND, association rejected for good). A countAtDestination
 * actor that throws means "not known this time".
 */
export type CountAtDestinationOutput = { count: number; how?: string } | { off: string };

/** What the invoked actors throw: retryable or not, and why (logged and recorded). */
export class PrefetchStepError extends Error {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean) {
    super(message);
    this.retryable = retryable;
  }
}

export type PrefetchContext = {
  job: PrefetchJobSpec;
  retry: PrefetchRetry;
  priors?: PriorStep[];
  /** Candidates left out by the selection, and why. */
  left?: Selection['left'];
  found?: number;
  matches?: Record<string, unknown>[];
  attempts: number;
  reason?: string;
  /** Set when the destination check is off for this job: why. */
  destinationCheckOff?: string;
  /** Things the job's history should say that are not a state or a prior's outcome (destination check). */
  notes: string[];
};

const nextPending = (priors: PriorStep[] | undefined) => priors?.findIndex((p) => p.state === 'pending') ?? -1;
const pendingPrior = (c: PrefetchContext) => c.priors![nextPending(c.priors)];
const checking = (c: PrefetchContext) => c.job.action.skipIfDestinationHas !== undefined && c.destinationCheckOff === undefined;
const countOf = (event: unknown) => (event as { output: CountAtDestinationOutput }).output;
const holds = (count: number, prior: PriorStep) => `destination holds ${count} of ${prior.instances} instances`;
const errorOf = (e: unknown) => (e instanceof PrefetchStepError ? e : new PrefetchStepError(e instanceof Error ? e.message : String(e), true));

/** Exponential backoff without jitter (the machine stays deterministic): initial × 2^(attempt-1), capped. */
export function retryDelayMs(retry: PrefetchRetry, attempts: number): number {
  return Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** Math.max(0, attempts - 1));
}

export const prefetchMachine = setup({
  types: {
    input: {} as PrefetchInput,
    context: {} as PrefetchContext,
  },
  actors: {
    // Provided by actors/jobs/prefetch.ts; these defaults only fail, so a machine used without them says so.
    findPriors: fromPromise<FindPriorsOutput, { job: PrefetchJobSpec }>(async () => {
      throw new PrefetchStepError('no C-FIND actor provided', false);
    }),
    movePrior: fromPromise<MovePriorOutput, { job: PrefetchJobSpec; prior: PriorStep }>(async () => {
      throw new PrefetchStepError('no C-MOVE actor provided', false);
    }),
    countAtDestination: fromPromise<CountAtDestinationOutput, { job: PrefetchJobSpec; prior: PriorStep }>(async () => {
      throw new PrefetchStepError('no destination C-FIND actor provided', false);
    }),
  },
  delays: { RETRY_DELAY: ({ context }) => retryDelayMs(context.retry, context.attempts) },
  guards: {
    hasPriors: ({ context }) => context.priors !== undefined,
    morePending: ({ context }) => nextPending(context.priors) >= 0,
    canRetry: ({ context, event }) => errorOf((event as { error?: unknown }).error).retryable && context.attempts + 1 < context.retry.attempts,
    allFine: ({ context }) => (context.priors ?? []).every((p) => p.state === 'moved' || p.state === 'skipped'),
    noneMoved: ({ context }) => !(context.priors ?? []).some((p) => p.state === 'moved' || p.state === 'partial'),
    shouldCheckDestination: ({ context }) => nextPending(context.priors) >= 0 && checking(context) && pendingPrior(context).instances !== undefined,
    cannotCheckDestination: ({ context }) => nextPending(context.priors) >= 0 && checking(context) && pendingPrior(context).instances === undefined,
    destinationHoldsAll: ({ context, event }) => {
      const out = countOf(event);
      return 'count' in out && out.count >= pendingPrior(context).instances!;
    },
    destinationCheckOff: ({ event }) => 'off' in countOf(event),
  },
  actions: {
    recordMatches: assign({ matches: ({ event }) => (event as unknown as { output: FindPriorsOutput }).output.matches }),
    select: assign(({ context }) => {
      const candidates = (context.matches ?? []).map(candidateOf).filter((c): c is PriorCandidate => c !== undefined);
      const { job } = context;
      const { selected, left } = selectPriors(candidates, job.action, {
        patientId: job.patientId, issuerOfPatientId: job.issuerOfPatientId, studyInstanceUid: job.triggeringStudy, at: new Date(job.createdAt),
      });
      return { priors: selected.map((c) => ({ ...c, state: 'pending' as const })), left, found: candidates.length, matches: undefined };
    }),
    recordMove: assign({
      priors: ({ context, event }) => {
        const out = (event as unknown as { output: MovePriorOutput }).output;
        const i = nextPending(context.priors);
        return context.priors!.map((p, j) => (j === i ? { ...p, ...out } : p));
      },
    }),
    skipPrior: assign({
      priors: ({ context, event }) => {
        const out = countOf(event) as { count: number };
        const i = nextPending(context.priors);
        return context.priors!.map((p, j) => (j === i ? { ...p, state: 'skipped' as const, reason: holds(out.count, p) } : p));
      },
    }),
    turnDestinationCheckOff: assign(({ context, event }) => {
      const why = (countOf(event) as { off: string }).off;
      return { destinationCheckOff: why, notes: [...context.notes, `destination check off for this job: ${why}; every prior is moved`] };
    }),
    noteDestinationCount: assign({
      notes: ({ context, event }) => {
        const out = countOf(event) as { count: number };
        const prior = pendingPrior(context);
        return [...context.notes, `prior ${prior.studyInstanceUid}: ${holds(out.count, prior)}, moving`];
      },
    }),
    noteDestinationUnknown: assign({
      notes: ({ context, event }) => [
        ...context.notes,
        `prior ${pendingPrior(context).studyInstanceUid}: destination count not known (${errorOf((event as { error?: unknown }).error).message}), moving`,
      ],
    }),
    noteNoArchiveCount: assign({
      notes: ({ context }) => [...context.notes, `prior ${pendingPrior(context).studyInstanceUid}: the archive did not return NumberOfStudyRelatedInstances, moving without asking the destination`],
    }),
    recordRetryableFailure: assign({
      attempts: ({ context }) => context.attempts + 1,
      reason: ({ event }) => errorOf((event as { error?: unknown }).error).message,
    }),
    recordFailure: assign({
      attempts: ({ context, event }) => context.attempts + (errorOf((event as { error?: unknown }).error).retryable ? 1 : 0),
      reason: ({ event }) => errorOf((event as { error?: unknown }).error).message,
    }),
    summarizePartial: assign({
      reason: ({ context }) => {
        const bad = (context.priors ?? []).filter((p) => p.state === 'failed' || p.state === 'partial');
        return bad.map((p) => `${p.studyInstanceUid}: ${p.reason ?? p.state}`).join('; ');
      },
    }),
  },
}).createMachine({
  id: 'prefetch',
  context: ({ input }) => ({ job: input.job, retry: input.retry, priors: input.priors, attempts: input.attempts ?? 0, notes: [] }),
  initial: 'starting',
  states: {
    starting: {
      always: [{ guard: 'hasPriors', target: 'moving' }, { target: 'querying' }],
    },
    querying: {
      invoke: {
        src: 'findPriors',
        input: ({ context }) => ({ job: context.job }),
        onDone: { target: 'selecting', actions: 'recordMatches' },
        onError: [
          { guard: 'canRetry', target: 'waitingToRetry', actions: 'recordRetryableFailure' },
          { target: 'failed', actions: 'recordFailure' },
        ],
      },
    },
    selecting: {
      entry: 'select',
      always: 'moving',
    },
    moving: {
      initial: 'next',
      states: {
        next: {
          always: [
            { guard: 'shouldCheckDestination', target: 'checkingDestination' },
            { guard: 'cannotCheckDestination', target: 'prior', actions: 'noteNoArchiveCount' },
            { guard: 'morePending', target: 'prior' },
            { target: '#prefetch.finishing' },
          ],
        },
        checkingDestination: {
          invoke: {
            src: 'countAtDestination',
            input: ({ context }) => ({ job: context.job, prior: pendingPrior(context) }),
            onDone: [
              { guard: 'destinationCheckOff', target: 'prior', actions: 'turnDestinationCheckOff' },
              { guard: 'destinationHoldsAll', target: 'next', actions: 'skipPrior' },
              { target: 'prior', actions: 'noteDestinationCount' },
            ],
            // Not known this time: move (a redundant move is harmless, a missing prior is not).
            onError: { target: 'prior', actions: 'noteDestinationUnknown' },
          },
        },
        prior: {
          invoke: {
            src: 'movePrior',
            input: ({ context }) => ({ job: context.job, prior: context.priors![nextPending(context.priors)] }),
            onDone: { target: 'next', actions: 'recordMove' },
            onError: [
              { guard: 'canRetry', target: '#prefetch.waitingToRetry', actions: 'recordRetryableFailure' },
              { target: '#prefetch.failed', actions: 'recordFailure' },
            ],
          },
        },
      },
    },
    waitingToRetry: {
      after: { RETRY_DELAY: 'starting' },
    },
    finishing: {
      always: [
        { guard: 'allFine', target: 'done' },
        { guard: 'noneMoved', target: 'failed', actions: 'summarizePartial' },
        { target: 'partiallyFailed', actions: 'summarizePartial' },
      ],
    },
    done: { type: 'final' },
    partiallyFailed: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type PrefetchState = 'starting' | 'querying' | 'selecting' | 'moving' | 'waitingToRetry' | 'finishing' | 'done' | 'partiallyFailed' | 'failed';
export const FINAL_PREFETCH_STATES: readonly PrefetchState[] = ['done', 'partiallyFailed', 'failed'];
