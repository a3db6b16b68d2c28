// The state layout every multi-response SCU transaction shares (C-FIND, C-MOVE; PS3.7 9.1.2, 9.1.4):
// send the request, take pending responses (each restarting the DIMSE timeout) until a final one;
// CANCEL_REQUESTED sends a C-CANCEL-RQ and still waits for the final response (normally FE00).
// The machine using it provides the named actions and the isPending guard:
// sendRequest, recordPending, recordFinal, recordCancel, sendCancel, recordTimeout, recordEnded.

/** States for a machine whose id is `machineId`, the active one named `active` (its initial state). */
export function pendingResponseStates<const Active extends string>(machineId: string, active: Active) {
  const awaiting = {
    entry: 'sendRequest',
    initial: 'waiting',
    states: {
      // Re-entered on each pending response: the DIMSE timeout runs between responses.
      waiting: {
        after: { DIMSE_TIMEOUT: { target: `#${machineId}.failed`, actions: 'recordTimeout' } },
        on: { RESPONSE_RECEIVED: { guard: 'isPending', target: 'waiting', reenter: true, actions: 'recordPending' } },
      },
    },
    on: {
      // Pending responses are taken by 'waiting' (so only it restarts); this is the final one.
      RESPONSE_RECEIVED: { target: 'done', actions: 'recordFinal' },
      CANCEL_REQUESTED: { target: 'cancelling', actions: ['recordCancel', 'sendCancel'] },
      ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
    },
  } as const;
  const rest = {
    cancelling: {
      // Responses may still arrive before the SCP sees the cancel; the final one ends it.
      on: {
        RESPONSE_RECEIVED: [
          { guard: 'isPending', actions: 'recordPending' },
          { target: 'done', actions: 'recordFinal' },
        ],
        ASSOCIATION_ENDED: { target: 'failed', actions: 'recordEnded' },
      },
      after: { DIMSE_TIMEOUT: { target: 'failed', actions: 'recordTimeout' } },
    },
    // The machine's output is the outcome the association reports.
    done: { type: 'final' },
    failed: { type: 'final' },
  } as const;
  return { ...({ [active]: awaiting } as Record<Active, typeof awaiting>), ...rest };
}
