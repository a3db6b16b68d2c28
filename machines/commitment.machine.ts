// One storage commitment request as a job in the actor tree (issue 15): waiting (for its instances
// to be committed by the listener's commitWhen) → reporting (the result is known; the N-EVENT-REPORT
// is sent, retried with backoff until acknowledged) → reported. The durable record is the truth
// (actors/jobs/commitment-store.ts): the actors layer starts a machine per open request, at the
// request or on restart, and tells it what happened; the machine is what the inspector shows.
import { assertEvent, assign, setup } from 'xstate';

export type CommitmentJobInput = {
  id: string;
  transactionUid: string;
  requester: string;
  commitWhen: string;
  instances: number;
  /** ISO 8601: what is not committed by then is reported failed (0110). */
  deadline: string;
  state: 'waiting' | 'reporting';
  waitingFor: number;
  reportAttempts: number;
  nextReportAt?: string;
  lastReportError?: string;
};

export type CommitmentJobEvent =
  | { type: 'PROGRESS'; waitingFor: number }
  | { type: 'DECIDED'; committed: number; failed: number }
  | { type: 'REPORT_FAILED'; attempts: number; nextReportAt: string; error: string }
  | { type: 'REPORTED'; via: 'same-association' | 'new-association' };

export type CommitmentJobContext = CommitmentJobInput & { committed?: number; failed?: number; reportedVia?: string };

export const commitmentMachine = setup({
  types: { input: {} as CommitmentJobInput, context: {} as CommitmentJobContext, events: {} as CommitmentJobEvent },
  guards: {
    decided: ({ context }) => context.state === 'reporting',
  },
  actions: {
    recordProgress: assign(({ event }) => {
      assertEvent(event, 'PROGRESS');
      return { waitingFor: event.waitingFor };
    }),
    recordDecision: assign(({ event }) => {
      assertEvent(event, 'DECIDED');
      return { committed: event.committed, failed: event.failed, waitingFor: 0, state: 'reporting' as const };
    }),
    recordReportFailure: assign(({ event }) => {
      assertEvent(event, 'REPORT_FAILED');
      return { reportAttempts: event.attempts, nextReportAt: event.nextReportAt, lastReportError: event.error };
    }),
    recordReported: assign(({ event }) => {
      assertEvent(event, 'REPORTED');
      return { reportedVia: event.via };
    }),
  },
}).createMachine({
  id: 'commitment',
  context: ({ input }) => input,
  initial: 'resuming',
  states: {
    // A restarted router resumes a request where its record left it.
    resuming: { always: [{ guard: 'decided', target: 'reporting' }, { target: 'waiting' }] },
    waiting: {
      on: {
        PROGRESS: { actions: 'recordProgress' },
        DECIDED: { target: 'reporting', actions: 'recordDecision' },
      },
    },
    reporting: {
      on: {
        REPORT_FAILED: { actions: 'recordReportFailure' },
        REPORTED: { target: 'reported', actions: 'recordReported' },
      },
    },
    reported: { type: 'final' },
  },
});
