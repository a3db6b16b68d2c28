// The world side of one peer AE: its association and the delivery of one queued item at a time.
// The peer machine (machines/peer.machine.ts) decides when to connect, send, back off or release;
// this opens the association, prepares each instance (modified header, transfer syntax conversion),
// streams it, and records the outcome in the durable queue.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PeerConfig } from '../../config/config.ts';
import type { DatasetSource } from '../../machines/dimse/dimse.events.ts';
import type { SendOutcome } from '../../machines/peer.machine.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import { rewriteHeader } from '../../protocol/dataset-rewrite.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import type { AcceptedContext } from '../../protocol/negotiation.ts';
import { formatStatus } from '../../protocol/status.ts';
import { canTranscode, isDeflated } from '../../protocol/deflated.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN as EXPLICIT_LE, IMPLICIT_VR_LITTLE_ENDIAN as IMPLICIT_LE } from '../../protocol/uids.ts';
import { applyModifications } from '../../routing/modifications.ts';
import type { Modification } from '../../routing/rule.types.ts';
import type { DomainEvents } from '../observe/domain-events.ts';
import { canDecompress, decompressDataset, MAX_DECOMPRESS_BYTES } from './decompress.ts';
import { inflatedSource } from './deflated-source.ts';
import { isSkipped } from './outbound-queue.ts';
import type { QueueItem } from './outbound-queue.ts';
import type { ForwardQueue } from './forward-queue.ts';
import { classifyAssociationFailure, outcomeOf, statusKey } from './retry-policy.ts';
import type { RetryPolicy } from './retry-policy.ts';
import { part10FileInMemory, readDatasetHeader, readPart10File } from '../ingest/part10-file.ts';
import type { Part10File } from '../ingest/part10-file.ts';
import { AssociationRejectedError, ScuAssociation } from '../net/scu.ts';
import type { PeerGates } from './peer-gate.ts';
import { rejectInWords } from '../../protocol/association-reject.ts';
import type { AssociationMachineRef } from '../net/association.ts';
import type { Spool } from '../ingest/spool.ts';
import { peerConnection } from '../net/peer-connection.ts';

/** How a transaction's failure starts when our own dataset bytes failed mid-send (actors/net/association.ts). */
const STREAM_FAILED = 'dataset stream failed: ';
/** Items looked at when choosing what to propose on a new association. */
const BATCH = 100;
/** Presentation context IDs are odd numbers 1..255. */
const MAX_CONTEXTS = 128;
/** Syntaxes a compressed instance can be decompressed to for a peer that takes no compression. */
type DecompressTarget = typeof EXPLICIT_LE | typeof IMPLICIT_LE;
const UNCOMPRESSED_TARGETS = new Set<string>([EXPLICIT_LE, IMPLICIT_LE]);

export type ForwarderDeps = {
  spool: Spool;
  /** The node's LMDB queue (LocalForwardQueue), or the cluster's shared one (actors/cluster/shared-queue.ts). */
  queue: ForwardQueue;
  logger: Logger;
  /** Which of the peer's association slots this forwarder drives (peers[].maxAssociations). */
  slot: string;
  /** Item ids being sent on the peer's other associations, shared by its slots: never sent twice at once,
   *  and a series waits while an earlier item of it is in flight. */
  inFlight: Set<string>;
  /** Another peer has work (a failover item was queued for it). */
  wake(peer: string): void;
  /** Turns for peers that take one association at a time (peers[].exclusive). */
  gates?: Pick<PeerGates, 'acquire'>;
  /** Domain events (forwarded, forward failed / dead letter): the audit trail, the console and metrics subscribe. */
  events?: DomainEvents;
};

export class PeerForwarder {
  readonly peer: PeerConfig;
  private readonly deps: ForwarderDeps;
  private readonly log: Logger;
  private scu: ScuAssociation | undefined;
  /** The transport of `scu` has closed (the peer released or dropped it). */
  private scuClosed = false;
  /** The SOP classes proposed on `scu` (accepted or not). */
  private proposed = new Set<string>();
  /** Releases under way: stop() waits for them. */
  private readonly releasing = new Set<Promise<void>>();
  /** open()/sendNext() under way. Stopping the peer machine does not stop them: they go on to write the
   *  queue and read the spool, so the router waits for them (settled) before it closes LMDB. */
  private readonly busy = new Set<Promise<unknown>>();
  private readonly policy: RetryPolicy;

  constructor(peer: PeerConfig, deps: ForwarderDeps) {
    this.peer = peer;
    this.deps = deps;
    this.log = deps.logger.child({ peer: peer.name, slot: deps.slot, peerAe: peer.aeTitle, peerAddress: `${peer.host}:${peer.port}` });
    this.policy = {
      attempts: peer.retry.attempts,
      initialBackoffMs: peer.retry.initialBackoffSeconds * 1000,
      maxBackoffMs: peer.retry.maxBackoffSeconds * 1000,
      jitter: peer.retry.jitter,
    };
  }

  /**
   * Transfer syntaxes proposed for an instance stored in `ts`, in order: its own first if the peer's
   * list has it, unless that list puts Deflated first (then the list as written: deflate for this peer).
   */
  proposalFor(ts: string): string[] {
    const list = this.peer.transferSyntaxes;
    const preferred = list === 'default' ? [ts, EXPLICIT_LE, IMPLICIT_LE] : [
      ...(list.includes(ts) && !isDeflated(list[0]) ? [ts] : []),
      ...list,
    ];
    return [...new Set(preferred)];
  }

  /**
   * Opens an association proposing what the due items need (the next due first). `association`: the
   * peer machine's upper-layer child to drive (so it shows in the actor tree); absent, a standalone one.
   */
  open(association?: AssociationMachineRef): Promise<void> {
    return this.track(this.openAssociation(association));
  }

  private async openAssociation(association?: AssociationMachineRef): Promise<void> {
    const items = await this.deps.queue.upcoming(this.peer.name, BATCH, this.deps.inFlight);
    const pairs = new Map<string, { abstractSyntax: string; transferSyntaxes: string[] }>();
    for (const item of items) {
      if (pairs.size >= MAX_CONTEXTS) break;
      pairs.set(`${item.sopClassUid}|${item.transferSyntaxUid}`, { abstractSyntax: item.sopClassUid, transferSyntaxes: this.proposalFor(item.transferSyntaxUid) });
    }
    if (pairs.size === 0) pairs.set('verification', { abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE] });
    // An exclusive peer takes one association at a time: wait for ours to be the only one.
    const endTurn = (await this.deps.gates?.acquire(this.peer.name)) ?? (() => {});
    let scu: ScuAssociation;
    try {
      scu = await this.connect([...pairs.values()], association);
    } catch (err) {
      endTurn();
      if (classifyAssociationFailure(err) === 'dead') await this.rejectedPermanently(err);
      throw err;
    }
    void scu.closed.then(endTurn);
    this.scu = scu;
    this.scuClosed = false;
    this.proposed = new Set([...pairs.values()].map((p) => p.abstractSyntax));
    void scu.closed.then(() => {
      if (this.scu === scu) this.scuClosed = true;
    });
    this.log.info({ contexts: pairs.size }, 'association to peer established');
  }

  private connect(contexts: { abstractSyntax: string; transferSyntaxes: string[] }[], association?: AssociationMachineRef): Promise<ScuAssociation> {
    return ScuAssociation.open({
      ...peerConnection(this.peer),
      contexts,
      ...(association ? { association } : {}),
      logger: this.deps.logger,
    });
  }

  /**
   * The peer rejected the association permanently (A-ASSOCIATE-RJ result 1: e.g. our called AE title is
   * not configured there). No retry can change that answer, so every item due now becomes a dead letter
   * at once with the reason in words (handed to its failover peer if the rule names one); an operator
   * fixes the configuration and retries them (`router queue retry`).
   */
  private async rejectedPermanently(err: unknown): Promise<void> {
    const reason = err instanceof AssociationRejectedError
      ? `association rejected permanently: ${rejectInWords(err.rj, this.peer.aeTitle)}`
      : `association rejected permanently: ${(err as Error).message}`;
    const dead = await this.deps.queue.deadLetterDue(this.peer.name, reason, { inFlight: this.deps.inFlight });
    this.log.error({ reason, deadLetters: dead.length, ids: dead.slice(0, 10).map((i) => i.id) }, 'association rejected permanently: due items are dead letters');
    for (const item of dead) {
      this.failedEvent(item, item, reason);
      await this.handOver(item);
    }
  }

  /** Releases the association, if open; resolves once every release under way has ended. */
  async release(): Promise<void> {
    const scu = this.scu;
    this.scu = undefined;
    if (scu) {
      const done = scu.release().finally(() => this.releasing.delete(done));
      this.releasing.add(done);
    }
    await Promise.all(this.releasing);
  }

  /**
   * Resolves once every open()/sendNext() under way has ended, whatever its outcome. After release()
   * that is bounded by the peer's timeouts (connect, DIMSE, A-RELEASE-RP).
   */
  async settled(): Promise<void> {
    while (this.busy.size > 0) await Promise.allSettled([...this.busy]);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.busy.add(work);
    work.then(() => this.busy.delete(work), () => this.busy.delete(work));
    return work;
  }

  /** Sends the next due item; rejects when the association is lost (the machine backs off). */
  sendNext(): Promise<SendOutcome> {
    return this.track(this.sendNextItem());
  }

  private async sendNextItem(): Promise<SendOutcome> {
    const item = await this.deps.queue.take(this.peer.name, this.deps.inFlight);
    // take() has added it to inFlight (before its own await: no other sender of the peer may take it).
    if (!item) return { outcome: 'empty', nextDueAt: await this.deps.queue.nextDueAt(this.peer.name) };
    let outcome: SendOutcome | undefined;
    try {
      outcome = await this.send(item);
      return outcome;
    } finally {
      this.deps.inFlight.delete(item.id);
      // Taken but not sent (the association is renewed first, or the send threw): free for any sender again.
      if (outcome === undefined || outcome.outcome === 'reconnect') await this.deps.queue.giveBack(item.id);
    }
  }

  private async send(item: QueueItem): Promise<SendOutcome> {
    // The peer closed the association while it was idle, or it was negotiated for another batch: the
    // peer machine releases it and opens one proposing what the due items (this one first) need.
    // (A class proposed and refused is not proposed again and again: the item fails below.)
    if (this.scu && (this.scuClosed || !this.proposed.has(item.sopClassUid))) return { outcome: 'reconnect', id: item.id };
    const context = this.contextFor(item);
    const scu = this.scu;
    if (!scu) throw new Error('no association to the peer');
    if (!context) {
      return this.fail(item, { retryable: false, error: `peer accepted no presentation context for ${item.sopClassUid} in a transfer syntax we can produce from ${item.transferSyntaxUid}` });
    }
    let source: DatasetSource;
    try {
      source = await this.prepare(item, context.transferSyntax);
    } catch (err) {
      return this.fail(item, { retryable: false, error: `cannot prepare the instance: ${(err as Error).message}` });
    }
    const outcome = await scu.storeDataset(context.id, item.sopClassUid, item.sopInstanceUid, source);
    if (outcome.status === undefined && outcome.failure?.startsWith(STREAM_FAILED)) {
      // Our own bytes failed half-way (the association was aborted for it): the file will not read
      // better next time, so a dead letter now with the reason; the peer is fine, the next item
      // reconnects.
      this.scu = undefined;
      return this.fail(item, { retryable: false, error: outcome.failure });
    }
    if (outcome.status === undefined) {
      // No answer (DIMSE timeout) or the association went away: abort what is left of it (PS3.7
      // leaves a transaction without response to the service user), retry the item later.
      this.scu = undefined;
      scu.abort();
      const updated = await this.deps.queue.failed(item.id, { error: outcome.failure ?? 'no response', retryable: true, policy: this.policy });
      if (updated) this.failedEvent(item, updated, outcome.failure ?? 'no response');
      throw new Error(outcome.failure ?? 'association lost');
    }
    const { verdict, overridden } = outcomeOf(outcome.status, this.peer.statusOverrides);
    const override = overridden ? { status: statusKey(outcome.status), outcome: verdict } : undefined;
    if (verdict === 'delivered') {
      await this.deps.queue.delivered(item.id, { status: outcome.status, ...(override ? { statusOverride: override } : {}) });
      const line = { id: item.id, sopInstanceUid: item.sopInstanceUid, status: formatStatus(outcome.status), syntax: context.transferSyntax };
      if (override) this.log.info({ ...line, errorComment: outcome.errorComment, statusOverride: `${override.status} → delivered` }, 'delivered (status override)');
      else if (outcome.status !== 0) this.log.warn({ ...line, errorComment: outcome.errorComment }, 'delivered with a warning');
      else this.log.info(line, 'delivered');
      if (this.deps.events?.observed) {
        const record = this.deps.spool.get(item.sopInstanceUid);
        this.deps.events.emit({
          type: 'instance-forwarded', peer: this.peer.name, sopInstanceUid: item.sopInstanceUid, sopClassUid: item.sopClassUid, studyInstanceUid: item.studyInstanceUid,
          bytes: record?.size ?? 0, status: outcome.status, patientId: record?.patientId ?? '',
        });
      }
      return { outcome: 'delivered', id: item.id };
    }
    const overrideNote = override ? ` (status override: ${override.status} → ${override.outcome})` : '';
    const error = `${formatStatus(outcome.status)}${outcome.errorComment ? `: ${outcome.errorComment}` : ''}${overrideNote}`;
    return this.fail(item, { status: outcome.status, retryable: verdict === 'retry', error, ...(override ? { statusOverride: override } : {}) });
  }

  private async fail(item: QueueItem, f: { status?: number; retryable: boolean; error: string; statusOverride?: { status: string; outcome: string } }): Promise<SendOutcome> {
    const updated = await this.deps.queue.failed(item.id, { ...f, policy: this.policy });
    if (!updated) return { outcome: 'dead', id: item.id, error: f.error };
    this.failedEvent(item, updated, f.error, f.status);
    if (updated.state === 'dead') {
      this.log.warn({ id: item.id, sopInstanceUid: item.sopInstanceUid, attempts: updated.attempts, reason: updated.deadReason }, 'dead letter');
      await this.handOver(item);
      return { outcome: 'dead', id: item.id, error: f.error };
    }
    this.log.warn({ id: item.id, attempts: updated.attempts, nextAttemptAt: updated.nextAttemptAt, error: f.error }, 'delivery failed; will retry');
    return { outcome: 'retry', id: item.id, error: f.error };
  }

  private failedEvent(item: QueueItem, updated: QueueItem, error: string, status?: number): void {
    this.deps.events?.emit({
      type: 'forward-failed', peer: this.peer.name, sopInstanceUid: item.sopInstanceUid, studyInstanceUid: item.studyInstanceUid, outcome: updated.state === 'dead' ? 'dead' : 'retry',
      error, attempts: updated.attempts, ...(status !== undefined ? { status } : {}), ...(updated.state === 'dead' ? {} : { nextAttemptAt: updated.nextAttemptAt }),
    });
  }

  /** A dead letter goes to its failover peer, if the rule names one; that peer's own duplicates policy applies. */
  private async handOver(item: QueueItem): Promise<void> {
    if (!item.failover || item.failover === this.peer.name) return;
    const moved = await this.deps.queue.add({ ...stripQueueState(item), peer: item.failover, failover: undefined });
    if (isSkipped(moved)) {
      this.log.warn({ id: item.id, failover: item.failover, why: moved.why }, 'not handed to the failover peer: a duplicate there');
    } else {
      this.log.warn({ id: item.id, failover: item.failover, newId: moved.id }, 'handed to the failover peer');
      this.deps.wake(item.failover);
    }
  }

  /**
   * The accepted context to send this item on: Deflated if the peer's list puts it first, else the
   * item's own syntax, else one we can convert it to (deflating last: it costs the most CPU).
   */
  private contextFor(item: QueueItem): AcceptedContext | undefined {
    const scu = this.scu;
    if (!scu) return undefined;
    const contexts = [...scu.association.contexts.values()].filter((c) => c.abstractSyntax === item.sopClassUid);
    const producible = contexts.filter((c) => canTranscode(item.transferSyntaxUid, c.transferSyntax));
    const list = this.peer.transferSyntaxes;
    const deflatedFirst = list !== 'default' && list.length > 0 && isDeflated(list[0]);
    return (deflatedFirst ? producible.find((c) => isDeflated(c.transferSyntax)) : undefined) ??
      contexts.find((c) => c.transferSyntax === item.transferSyntaxUid) ??
      producible.find((c) => !isDeflated(c.transferSyntax)) ??
      producible[0] ??
      (canDecompress(item.transferSyntaxUid) ? contexts.find((c) => UNCOMPRESSED_TARGETS.has(c.transferSyntax)) : undefined);
  }

  /**
   * A compressed instance for a peer that accepted no compressed syntax: decoded with the codecs
   * (the one place an instance is held whole in memory, bounded by MAX_DECOMPRESS_BYTES), then
   * modified like any other. A DecompressError makes the item a dead letter with its reason.
   */
  private async decompressed(file: Part10File, target: DecompressTarget, modifications: Modification[]): Promise<DatasetSource> {
    if (file.datasetLength > MAX_DECOMPRESS_BYTES) throw new Error(`compressed dataset of ${file.datasetLength} bytes is too large to decompress`);
    const handle = await open(file.path, 'r');
    let compressed: Buffer;
    try {
      compressed = Buffer.alloc(file.datasetLength);
      await handle.read(compressed, 0, file.datasetLength, file.datasetOffset);
    } finally {
      await handle.close();
    }
    let dataset = await decompressDataset(compressed, file.transferSyntaxUid, target);
    this.log.info({ path: file.path, from: file.transferSyntaxUid, to: target, bytes: dataset.length }, 'decompressed for a peer that takes no compression');
    if (modifications.length > 0) {
      const header = headerOf(dataset, target);
      const { changes, charset } = applyModifications(parseHeader(header, target).dataset, modifications);
      dataset = Buffer.concat([rewriteHeader(header, target, changes, charset), dataset.subarray(header.length)]);
    }
    return { kind: 'prepared', head: dataset, path: file.path, offset: file.datasetOffset + file.datasetLength, length: 0 };
  }

  /** The bytes to send: the stored dataset, its header rewritten when the rule modifies it, converted if needed. */
  private async prepare(item: QueueItem, targetSyntax: string): Promise<DatasetSource> {
    const spool = this.deps.spool;
    const held = spool.heldFile(item.path); // acknowledged from memory, its file not written yet: send from there
    const file = held ? part10FileInMemory(join(spool.dir, item.path), held) : await readPart10File(join(spool.dir, item.path));
    if (file.transferSyntaxUid !== item.transferSyntaxUid) throw new Error(`stored file is ${file.transferSyntaxUid}, queue says ${item.transferSyntaxUid}`);
    const modifications = item.modifications as Modification[];
    const convert = targetSyntax === file.transferSyntaxUid ? undefined : { from: file.transferSyntaxUid, to: targetSyntax };
    const decompress = convert !== undefined && !canTranscode(file.transferSyntaxUid, targetSyntax);
    const inflate = isDeflated(file.transferSyntaxUid) && (convert !== undefined || modifications.length > 0);
    if (held && (decompress || inflate)) {
      // The rare paths read the file itself: have it written now.
      await spool.whenWritten(item.path);
      return this.prepare(item, targetSyntax);
    }
    if (decompress) return this.decompressed(file, targetSyntax as DecompressTarget, modifications);
    // Stored Deflated: inflated on the way (and checked whole first) unless it goes out untouched.
    if (inflate) return inflatedSource(file, targetSyntax, modifications);
    const bytes = file.bytes ? { bytes: file.bytes } : {};
    if (modifications.length === 0) {
      if (!convert) return { kind: 'file', path: file.path, offset: file.datasetOffset, length: file.datasetLength, ...bytes };
      return { kind: 'prepared', head: new Uint8Array(0), path: file.path, offset: file.datasetOffset, length: file.datasetLength, convert, ...bytes };
    }
    const header = await readDatasetHeader(file);
    const keys = parseHeader(header, file.transferSyntaxUid);
    const { changes, charset } = applyModifications(keys.dataset, modifications);
    const head = rewriteHeader(header, file.transferSyntaxUid, changes, charset);
    return {
      kind: 'prepared',
      head,
      path: file.path,
      offset: file.datasetOffset + header.length,
      length: file.datasetLength - header.length,
      ...(convert ? { convert } : {}),
      ...bytes,
    };
  }
}

/** The bytes of an in-memory dataset before its top-level Pixel Data. */
function headerOf(dataset: Uint8Array, ts: string): Uint8Array {
  const walker = DatasetWalker.forSyntax(ts, { stopAtPixelData: true });
  walker.push(dataset);
  return dataset.subarray(0, walker.pixelDataOffset ?? dataset.length);
}

function stripQueueState(item: QueueItem) {
  const { id: _id, attempts: _a, nextAttemptAt: _n, state: _s, enqueuedAt: _e, lastStatus: _l, lastError: _le, deadReason: _d, fingerprint: _f, ...rest } = item;
  return rest;
}
