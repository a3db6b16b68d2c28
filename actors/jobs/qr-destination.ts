// The C-STORE sub-operations of a C-MOVE the router performs itself: one association to the move
// destination (a configured peer), proposing what the instances need, reopened when an instance of a
// SOP class / transfer syntax not yet proposed comes along (retrieve-through learns them as they
// arrive). Each stored file goes as it is, or converted between uncompressed syntaxes as forwarding does.
// Tally keeps the counts and failed UIDs the C-MOVE's responses report.
import type { Logger } from 'pino';
import type { PeerConfig } from '../../config/config.ts';
import type { DatasetSource, DimseOutcome } from '../../machines/dimse/dimse.events.ts';
import type { AcceptedContext } from '../../protocol/negotiation.ts';
import { canTranscode, isDeflated } from '../../protocol/deflated.ts';
import { formatStatus, Status, statusCategory, errorCommentOf } from '../../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN } from '../../protocol/uids.ts';
import { part10FileInMemory, readPart10File } from '../ingest/part10-file.ts';
import type { InstanceRecord, Spool } from '../ingest/spool.ts';
import { peerConnection } from '../net/peer-connection.ts';
import { ScuAssociation } from '../net/scu.ts';
import type { SubOperations } from '../../machines/dimse/dimse.events.ts';
import type { QrFinal } from '../../machines/dimse/qr-scp.events.ts';
import { encodeIdentifier } from '../../protocol/dataset-encode.ts';
import type { QrRequest } from './qr-scp.ts';
import type { AssociationOwner } from './qr-job.ts';

/** Presentation context IDs are odd numbers 1..255. */
const MAX_CONTEXTS = 128;

/** What one sub-operation came to; 'lost': the destination association failed (this one and the rest fail). */
export type SubOperationResult = { result: 'completed' | 'warning' | 'failed' } | { result: 'lost'; why: string };

/** Where a retrieval's C-STORE sub-operations go: a move destination (C-MOVE), or back to the requester (C-GET). */
export type SubOperationSender = {
  /** For logs and Error Comments: 'destination WS', 'requester'. */
  readonly name: string;
  plan(records: InstanceRecord[]): void;
  /** Ready to send (an association opened); throws when nothing can be sent at all. */
  open(): Promise<void>;
  send(record: InstanceRecord): Promise<SubOperationResult>;
  close(): Promise<void>;
  /** Its associations become children of this owner (a retrieve-through job); absent: it opens none of its own. */
  ownedBy?(owner: AssociationOwner): void;
};

export class DestinationSender implements SubOperationSender {
  readonly destination: PeerConfig;
  readonly #spool: Spool;
  readonly #callingAeTitle: string;
  readonly #log: Logger;
  #scu: ScuAssociation | undefined;
  #owner: AssociationOwner | undefined;
  readonly #pairs = new Map<string, { abstractSyntax: string; transferSyntaxes: string[] }>();

  readonly name: string;

  readonly #turn: ((peer: string) => Promise<() => void>) | undefined;

  /** `turn`: waits for an exclusive destination's turn (one association at a time, whoever opens it). */
  constructor(spool: Spool, destination: PeerConfig, callingAeTitle: string, log: Logger, turn?: (peer: string) => Promise<() => void>) {
    this.#spool = spool;
    this.#turn = turn;
    this.destination = destination;
    this.name = `destination ${destination.aeTitle}`;
    this.#callingAeTitle = callingAeTitle;
    this.#log = log;
  }

  /** Propose these records' classes and syntaxes on the next association (before the first send). */
  plan(records: InstanceRecord[]): void {
    for (const r of records) this.#want(r);
  }

  #want(r: InstanceRecord): boolean {
    const key = `${r.sopClassUid}|${r.transferSyntaxUid}`;
    if (this.#pairs.has(key) || this.#pairs.size >= MAX_CONTEXTS) return false;
    this.#pairs.set(key, { abstractSyntax: r.sopClassUid, transferSyntaxes: [...new Set([r.transferSyntaxUid, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN])] });
    return true;
  }

  /** Opens the association now (a refusal is the caller's to report: nothing could be sent). */
  async open(): Promise<void> {
    const d = this.destination;
    const owner = this.#owner;
    const endTurn = (await this.#turn?.(d.name)) ?? (() => {});
    const association = owner?.open(d.name);
    try {
      this.#scu = await ScuAssociation.open({
        ...peerConnection(d),
        // The sub-operations come from the AE title the requester called, not the peer's configured one.
        callingAeTitle: this.#callingAeTitle,
        contexts: [...this.#pairs.values()],
        ...(association ? { association } : {}),
        logger: this.#log,
      });
    } catch (err) {
      endTurn();
      if (association) owner?.close(association);
      throw err;
    }
    void this.#scu.closed.then(() => {
      endTurn();
      if (association) owner?.close(association);
    });
  }

  ownedBy(owner: AssociationOwner): void {
    this.#owner = owner;
  }

  /** One C-STORE sub-operation. */
  async send(record: InstanceRecord): Promise<SubOperationResult> {
    if (this.#want(record) && this.#scu) {
      // A class or syntax not proposed yet: a new association that proposes it too.
      await this.#scu.release().catch(() => this.#scu?.abort());
      this.#scu = undefined;
    }
    if (!this.#scu) {
      try {
        await this.open();
      } catch (err) {
        return { result: 'lost', why: `cannot associate: ${(err as Error).message}` };
      }
    }
    const outcome = await this.#store(this.#scu!, record);
    if (outcome.status === undefined) {
      this.#scu?.abort();
      this.#scu = undefined;
      return { result: 'lost', why: outcome.failure ?? 'no response' };
    }
    const category = statusCategory(outcome.status);
    if (category === 'success') return { result: 'completed' };
    if (category === 'warning') return { result: 'warning' };
    this.#log.warn({ side: 'destination', sopInstanceUid: record.sopInstanceUid, status: formatStatus(outcome.status), errorComment: outcome.errorComment ?? outcome.failure }, 'C-MOVE sub-operation failed');
    return { result: 'failed' };
  }

  async close(): Promise<void> {
    const scu = this.#scu;
    this.#scu = undefined;
    await scu?.release().catch(() => scu.abort());
  }

  async #store(scu: ScuAssociation, record: InstanceRecord): Promise<DimseOutcome> {
    const context = contextFor([...scu.association.contexts.values()], record);
    if (!context) return { messageId: 0, status: Status.SOP_CLASS_NOT_SUPPORTED, failure: `destination accepted no context for ${record.sopClassUid} in a syntax producible from ${record.transferSyntaxUid}` };
    const source = await storedSource(this.#spool, record, context.transferSyntax);
    if ('failure' in source) return { messageId: 0, status: Status.PROCESSING_FAILURE, failure: source.failure };
    return scu.storeDataset(context.id, record.sopClassUid, record.sopInstanceUid, source);
  }
}

/** The accepted context to send a stored instance on: its own syntax, else one converted to (not Deflated). */
export function contextFor(contexts: AcceptedContext[], record: InstanceRecord): AcceptedContext | undefined {
  const mine = contexts.filter((c) => c.abstractSyntax === record.sopClassUid);
  return mine.find((c) => c.transferSyntax === record.transferSyntaxUid) ??
    (isDeflated(record.transferSyntaxUid) ? undefined : mine.find((c) => canTranscode(record.transferSyntaxUid, c.transferSyntax) && !isDeflated(c.transferSyntax)));
}

/** A stored instance's dataset as it is, or converted between uncompressed syntaxes on the way. */
export async function storedSource(spool: Spool, record: InstanceRecord, transferSyntax: string): Promise<DatasetSource | { failure: string }> {
  let file;
  try {
    // Acknowledged from memory, its file not written yet: sent from the bytes the spool holds.
    const held = spool.heldFile(record.path);
    file = held ? part10FileInMemory(spool.pathOf(record), held) : await readPart10File(spool.pathOf(record));
  } catch (err) {
    return { failure: `cannot read the stored instance: ${(err as Error).message}` };
  }
  const region = { path: file.path, offset: file.datasetOffset, length: file.datasetLength, ...(file.bytes ? { bytes: file.bytes } : {}) };
  return transferSyntax === file.transferSyntaxUid
    ? { kind: 'file', ...region }
    : { kind: 'prepared', head: new Uint8Array(0), ...region, convert: { from: file.transferSyntaxUid, to: transferSyntax } };
}

/** Sub-operation counts and the failed UIDs, as a C-MOVE's final response reports them. */
export class Tally {
  readonly counts: SubOperations;
  readonly failedUids: string[] = [];
  lost: string | undefined;
  readonly #tried = new Set<string>();
  constructor(remaining: number) {
    this.counts = { remaining, completed: 0, failed: 0, warning: 0 };
  }
  add(sopInstanceUid: string, r: SubOperationResult): void {
    this.#tried.add(sopInstanceUid);
    if (this.counts.remaining !== undefined && this.counts.remaining > 0) this.counts.remaining--;
    if (r.result === 'completed') this.counts.completed++;
    else if (r.result === 'warning') this.counts.warning++;
    else {
      this.counts.failed++;
      this.failedUids.push(sopInstanceUid);
      if (r.result === 'lost') this.lost = r.why;
    }
  }
  /** Every listed instance not tried yet failed (the destination is gone). */
  failRest(uids: string[]): void {
    for (const uid of uids) {
      if (this.#tried.has(uid)) continue;
      this.failedUids.push(uid);
      this.counts.failed++;
    }
    this.counts.remaining = 0;
  }
  /** The final status (PS3.4 C.4.2.1.5): 0000, B000 with the failed UIDs, A702 when nothing could be sent, FE00. */
  final(cancelled: boolean, sender: string, req: QrRequest, upstreamFailed = 0): QrFinal {
    const { completed, warning } = this.counts;
    const failed = this.counts.failed + upstreamFailed;
    const suboperations: SubOperations = { completed, failed, warning };
    const list = this.failedUids.length > 0 ? { dataset: encodeIdentifier({ FailedSOPInstanceUIDList: this.failedUids.join('\\') }, req.transferSyntax) } : {};
    if (cancelled) return { status: Status.CANCEL, suboperations: { ...suboperations, remaining: this.counts.remaining }, ...list };
    if (failed === 0 && warning === 0) return { status: Status.SUCCESS, suboperations };
    return {
      status: completed === 0 && warning === 0 && this.lost ? Status.OUT_OF_RESOURCES_SUB_OPERATIONS : Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES,
      ...(this.lost ? { errorComment: errorCommentOf(`${sender} failed: ${this.lost}`) } : {}),
      suboperations,
      ...list,
    };
  }
}
