// C-GET through the router (PS3.4 C.4.3): like a C-MOVE whose destination is the requester itself.
// What the spool holds in full goes back from the spool; the rest comes through the router first
// (retrieve-through from the upstream archives, which must know the router's AE title), each instance
// sent back as soon as it is durable here. Relay is not possible: the archive cannot reach the
// requester's association.
import type { SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal, Running } from '../../machines/dimse/qr-scp.events.ts';
import type { SubOperationSender } from './qr-destination.ts';
import { fromSpoolAlone, heldAndUpstream, runRetrieval, spoolOrRetrieveThrough } from './qr-scp-move.ts';
import { startRetrieveThroughJob } from './qr-scp-through.ts';
import type { QrContext, QrRequest } from './qr-scp.ts';

export function runGet(ctx: QrContext, req: QrRequest, sender: SubOperationSender, progress: (s: SubOperations) => void): Running<QrFinal> {
  return runRetrieval(req, async (parsed, control) => {
    const { held, upstream } = heldAndUpstream(ctx, parsed);
    if (upstream.length === 0) return fromSpoolAlone(req, sender, held, progress, control);
    // Asking the archives, the C-GET is a job in the actor tree from the start, its associations its children.
    const job = startRetrieveThroughJob(ctx, req, parsed.level, parsed.keys, sender, upstream);
    return spoolOrRetrieveThrough(ctx, req, parsed, sender, held, upstream, progress, control, job, 'C-GET');
  });
}
