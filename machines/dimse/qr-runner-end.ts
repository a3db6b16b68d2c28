// How a Q/R transaction's runner ends, as its machine hears it: SEARCH_DONE with the final status,
// or Unable to process with why when it failed. The cleanup (the machine leaving the state, or
// stopping) cancels a runner that has not ended, which relays the C-CANCEL upstream.
import { Status } from '../../protocol/status.ts';
import type { QrFinal, Running } from './qr-scp.events.ts';

export function reportEnd(run: Running<QrFinal>, sendBack: (event: { type: 'SEARCH_DONE' } & QrFinal) => void, what: string): () => void {
  let ended = false;
  run.done.then(
    (final) => {
      ended = true;
      sendBack({ type: 'SEARCH_DONE', ...final });
    },
    (err: unknown) => {
      ended = true;
      sendBack({ type: 'SEARCH_DONE', status: Status.UNABLE_TO_PROCESS, errorComment: `${what} failed: ${String(err)}` });
    },
  );
  return () => {
    if (!ended) run.cancel();
  };
}
