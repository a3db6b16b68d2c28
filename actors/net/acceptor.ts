// The acceptor side of one association on a listener: answers the A-ASSOCIATE-RQ from the
// listener's policy, turns DIMSE requests into transaction machines (spawned by the association
// machine), and streams C-STORE datasets into the spool.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { DimseInput } from '../../machines/dimse/dimse.events.ts';
import type { ListenerActorRef } from '../../machines/listener.machine.ts';
import { atCapacity } from '../../machines/listener.machine.ts';
import type { Command } from '../../protocol/dimse.ts';
import { CommandField } from '../../protocol/dimse.ts';
import type { AcceptorPolicy } from '../../protocol/negotiation.ts';
import { negotiate, Reject, withCommitmentReports } from '../../protocol/negotiation.ts';
import { Status } from '../../protocol/status.ts';
import { Association } from './association.ts';
import type { AssociationMachineRef, DatasetSink } from './association.ts';
import { collectingSink } from './collecting-sink.ts';
import { transactionId } from '../../machines/association.machine.ts';
import type { Spool } from '../ingest/spool.ts';
import { StoreSink } from '../ingest/store-sink.ts';
import type { ReceiveContext, StoreVerdict } from '../ingest/store-sink.ts';
import type { StoreResult } from '../../machines/dimse/c-store-scp.machine.ts';
import type { AssociateRj } from '../../protocol/pdu.types.ts';
import { rejectionReason } from '../observe/domain-events.ts';
import type { DomainEvents } from '../observe/domain-events.ts';
import { evaluate } from '../../routing/evaluate.ts';
import type { RoutingDecision, RuleSet } from '../../routing/rule.types.ts';
import { isSkipped, queueItemFor } from '../forward/outbound-queue.ts';
import type { OutboundQueue } from '../forward/outbound-queue.ts';
import type { PrefetchPlanner } from '../jobs/prefetch.ts';
import type { CompletionHolder, HoldNote } from '../jobs/completion.ts';
import type { InstanceRecord } from '../ingest/spool.ts';
import type { AeTitleBinding } from '../../config/config.ts';
import { checkAeTitleBinding, identityOf } from './tls-identity.ts';
import { qrModelOf } from '../jobs/qr-scp.ts';
import type { QrContext, StoredInstance } from '../jobs/qr-scp.ts';
import { runFind } from '../jobs/qr-scp-find.ts';
import { runMove } from '../jobs/qr-scp-move.ts';
import { runGet } from '../jobs/qr-scp-get.ts';
import { RequesterSender } from '../jobs/qr-requester-sender.ts';
import type { CommitmentService } from '../jobs/commitment.ts';
import { receiveNAction } from '../jobs/commitment-scp.ts';
import type { CommitmentScuService } from '../jobs/commitment-scu.ts';
import { receiveNEventReport } from '../jobs/commitment-scu-report.ts';
import type { CertificateIdentity } from './tls-identity.ts';

/** What a listener needs to route: the rules in force, the outbound queue, and a way to wake peers. */
export type RoutingRuntime = {
  rules(): RuleSet;
  queue: OutboundQueue;
  wake(peers: string[]): void;
  /** Prefetch jobs: planned in the instance's transaction, started after it (actors/jobs/prefetch.ts). */
  prefetch?: PrefetchPlanner;
  /** Forwards of rules with a trigger: held in the instance's transaction until complete (actors/jobs/completion.ts). */
  completion?: CompletionHolder;
};

export type ListenerRuntime = {
  name: string;
  /** Domain events (instance stored, association opened/closed/rejected): the audit trail, the console and metrics subscribe. */
  events: DomainEvents;
  routing?: RoutingRuntime;
  policy: AcceptorPolicy;
  idleTimeoutMs: number;
  dimseTimeoutMs: number;
  ref: ListenerActorRef;
  spool: Spool;
  logger: Logger;
  /** A TLS listener: calling AE titles bound to client certificates (empty: none). */
  tls?: { aeTitleBindings: AeTitleBinding[] };
  /** A listener with queryRetrieve: what its C-FIND and C-MOVE transactions ask (actors/jobs/qr-scp.ts). */
  qr?: QrContext;
  /** Told of each instance once it is durable (retrieve-through waits for what it moved into the router). */
  onStored?: (instance: StoredInstance) => void;
  /** Storage Commitment Push Model SCP, on a listener that performs it (actors/jobs/commitment.ts). */
  commitment?: CommitmentService;
  /** Storage commitment asked of peers: their N-EVENT-REPORTs come here (the peer in SCP role; actors/jobs/commitment-scu.ts). */
  commitmentScu?: CommitmentScuService;
};

type PendingStore = { sink: StoreSink; verdict?: StoreVerdict; decision?: RoutingDecision };

export class Acceptor {
  readonly association: Association;
  private readonly listener: ListenerRuntime;
  private readonly pending = new Map<number, PendingStore>();
  /** tlsSubject: the client certificate's subject on a TLS listener (routing rules' `tlsSubject`). */
  private ctx: ReceiveContext & { tlsSubject?: string };
  /** The verified client certificate's identity, on a TLS listener that got one. */
  private readonly identity: CertificateIdentity | undefined;
  private established = false;
  /** The rules in force when this association was established (an edit applies from the next one). */
  private ruleSet: RuleSet | undefined;
  /** SOP classes for which the requestor took the SCP role (C-GET sub-operations go back to it). */
  private requestorScpRoles = new Set<string>();

  constructor(listener: ListenerRuntime, socket: Socket, id: string, machine: AssociationMachineRef) {
    this.listener = listener;
    const log = listener.logger.child({ assoc: id, listener: listener.name, peer: `${socket.remoteAddress}:${socket.remotePort}` });
    this.ctx = { callingAeTitle: '', calledAeTitle: '', listener: listener.name, remoteAddress: socket.remoteAddress ?? '' };
    const cert = socket instanceof TLSSocket ? socket.getPeerX509Certificate() : undefined;
    this.identity = cert ? identityOf(cert) : undefined;
    if (this.identity) this.ctx.tlsSubject = this.identity.subject;
    this.association = new Association({
      id,
      machine,
      logger: log,
      maxReceivePduLength: listener.policy.maxPduLength,
      idleTimeoutMs: listener.idleTimeoutMs,
      handlers: {
        onRequest: (contextId, command, expectsDataset) => this.onRequest(contextId, command, expectsDataset),
        onClosed: () => this.onClosed(),
      },
    });
    machine.on('ASSOCIATE_INDICATION', ({ rq }) => this.onAssociateRq(rq));
    machine.on('RELEASE_INDICATION', () => {
      this.association.log.info('release requested by peer');
      machine.send({ type: 'A_RELEASE_RESPONSE_REQUESTED' });
    });
    machine.send({ type: 'TRANSPORT_ACCEPTED' });
    this.association.attach(socket);
    log.info(this.identity ? { tlsSubject: this.identity.subject } : {}, 'connection accepted');
  }

  private onAssociateRq(rq: Parameters<typeof negotiate>[0]): void {
    const a = this.association;
    a.log = a.log.child({ callingAe: rq.callingAeTitle, calledAe: rq.calledAeTitle });
    this.ctx = { ...this.ctx, callingAeTitle: rq.callingAeTitle, calledAeTitle: rq.calledAeTitle };
    // A storage commitment peer reporting (reverse role) gets the SOP class and its SCP role, on any listener.
    const scu = this.listener.commitmentScu;
    const result = negotiate(rq, scu?.isCommitmentPeerAe(rq.callingAeTitle) ? withCommitmentReports(this.listener.policy) : this.listener.policy);
    const binding = result.accepted && this.listener.tls ? checkAeTitleBinding(this.listener.tls.aeTitleBindings, rq.callingAeTitle, this.identity) : { ok: true as const };
    if (!binding.ok) {
      // The AE title is not believed without the certificate that backs it: 1/1/3, as for an unknown calling AE title.
      return this.refuse(Reject.callingAeNotRecognized, 'calling-ae-tls-binding-3', binding.why, { tlsSubject: this.identity?.subject }, 'association rejected: calling AE title not bound to this certificate', true);
    }
    if (!result.accepted) return this.refuse(result.rj, result.why.split(' ')[0] + '-' + result.rj.reason, result.why);
    if (atCapacity(this.listener.ref.getSnapshot().context)) {
      const max = this.listener.ref.getSnapshot().context.maxAssociations;
      return this.refuse(Reject.localLimitExceeded, 'local-limit-exceeded', `local limit exceeded (${max} associations)`);
    }
    a.contexts = result.contexts;
    this.requestorScpRoles = new Set(result.ac.userInformation.roleSelections.filter((r) => r.scpRole).map((r) => r.sopClassUid));
    this.ruleSet = this.listener.routing?.rules();
    a.peerMaxPduLength = rq.userInformation.maxPduLength;
    a.log.info(
      {
        accepted: [...result.contexts.values()].map((c) => `${c.id}:${c.abstractSyntax}/${c.transferSyntax}`),
        rejected: result.ac.presentationContexts.filter((pc) => pc.result !== 0).map((pc) => `${pc.id}:${pc.result}`),
        peerMaxPdu: a.peerMaxPduLength,
      },
      'association accepted',
    );
    this.listener.ref.send({ type: 'ASSOCIATION_ESTABLISHED', associationId: a.id });
    this.established = true;
    this.listener.events?.emit({ type: 'association-opened', ...this.eventParties() });
    a.machine.send({ type: 'A_ASSOCIATE_ACCEPT_REQUESTED', ac: result.ac });
  }

  /** A-ASSOCIATE-RJ with its reason, logged, counted and published (audited from the event). */
  private refuse(rj: AssociateRj, reason: string, why: string, logFields: Record<string, unknown> = {}, message = 'association rejected', tlsBinding = false): void {
    const a = this.association;
    a.log.warn({ result: rj.result, source: rj.source, reason: rj.reason, why, ...logFields }, message);
    this.listener.ref.send({ type: 'ASSOCIATION_REJECTED', associationId: a.id, reason });
    this.listener.events?.emit({ type: 'association-rejected', listener: this.listener.name, reason: rejectionReason(rj, tlsBinding), callingAe: this.ctx.callingAeTitle, calledAe: this.ctx.calledAeTitle, address: this.association.remoteAddress ?? '', detail: why });
    a.machine.send({ type: 'A_ASSOCIATE_REJECT_REQUESTED', rj: { ...rj } });
  }

  private eventParties() {
    return { listener: this.listener.name, association: this.association.id, callingAe: this.ctx.callingAeTitle, calledAe: this.ctx.calledAeTitle, address: this.association.remoteAddress ?? '' };
  }

  private onRequest(contextId: number, command: Command, expectsDataset: boolean): DatasetSink | undefined {
    const a = this.association;
    const messageId = command.MessageID ?? 0;
    const input: DimseInput = { associationId: a.id, messageId, contextId, command, dimseTimeoutMs: this.listener.dimseTimeoutMs };
    const context = a.contexts.get(contextId)!;
    if (command.CommandField === CommandField.C_ECHO_RQ) {
      a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cEchoScp', input });
      return undefined;
    }
    if (command.CommandField === CommandField.C_CANCEL_RQ) {
      this.cancel(command.MessageIDBeingRespondedTo);
      return undefined;
    }
    const qr = this.qrRequest(context.abstractSyntax, command, expectsDataset);
    if (qr) return qr(input, context.transferSyntax);
    if (command.CommandField === CommandField.N_EVENT_REPORT_RQ && this.listener.commitmentScu?.isCommitmentPeerAe(this.ctx.callingAeTitle)) {
      const scu = this.listener.commitmentScu;
      const callingAe = this.ctx.callingAeTitle;
      return receiveNEventReport(a, input, (bytes, ts) => scu.report(callingAe, 'listener', bytes, ts), expectsDataset);
    }
    if (command.CommandField === CommandField.N_ACTION_RQ && this.listener.commitment) {
      const { listener, callingAeTitle, calledAeTitle } = this.ctx;
      return receiveNAction(a, this.listener.commitment, input, { listener, callingAeTitle, calledAeTitle }, expectsDataset);
    }
    if (command.CommandField !== CommandField.C_STORE_RQ || !expectsDataset) {
      a.log.warn({ command: command.CommandField }, 'request not supported here: answering 0211');
      a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'refusedRequest', input });
      return expectsDataset ? drainSink() : undefined;
    }
    // The C-STORE machine reaches its store through its input: this acceptor's commit of this message.
    a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cStoreScp', input: { ...input, store: () => this.commit(messageId) } });
    if (command.AffectedSOPClassUID !== context.abstractSyntax) {
      a.log.warn({ command: command.AffectedSOPClassUID, context: context.abstractSyntax }, 'C-STORE SOP class differs from its presentation context');
      return drainSink(() =>
        this.toTransaction(messageId, { ok: false, status: Status.SOP_CLASS_NOT_SUPPORTED, errorComment: 'SOP class not that of the presentation context' }),
      );
    }
    let sink: StoreSink;
    try {
      sink = new StoreSink({
        spool: this.listener.spool,
        command,
        transferSyntaxUid: context.transferSyntax,
        ctx: { ...this.ctx, remoteAddress: this.ctx.remoteAddress },
        onEnd: (verdict) => this.toTransaction(messageId, verdict),
      });
    } catch (err) {
      a.log.error({ err: String(err) }, 'spool refused a new instance');
      return drainSink(() => this.toTransaction(messageId, { ok: false, status: Status.OUT_OF_RESOURCES, errorComment: 'spool unavailable' }));
    }
    this.pending.set(messageId, { sink });
    return sink;
  }

  /** A C-CANCEL-RQ (PS3.7 9.3.2.3): to the transaction it names, if still under way; it has no response. */
  private cancel(messageId: number | undefined): void {
    const child = messageId === undefined ? undefined : this.association.machine.getSnapshot().children[transactionId(messageId)];
    this.association.log.info({ messageIdBeingRespondedTo: messageId, underWay: child !== undefined }, 'C-CANCEL received');
    child?.send({ type: 'CANCEL_REQUESTED' });
  }

  /**
   * A C-FIND, C-MOVE or C-GET on a Q/R context of a listener that offers it: the identifier is collected,
   * then its transaction machine is spawned with the search or retrieval that answers it.
   */
  private qrRequest(abstractSyntax: string, command: Command, expectsDataset: boolean): ((input: DimseInput, transferSyntax: string) => DatasetSink) | undefined {
    const qr = this.listener.qr;
    const kind = qrModelOf(abstractSyntax);
    if (!qr || !kind || !expectsDataset) return undefined;
    const field = { find: CommandField.C_FIND_RQ, move: CommandField.C_MOVE_RQ, get: CommandField.C_GET_RQ }[kind.service];
    if (command.CommandField !== field) return undefined;
    return (input, transferSyntax) => {
      const a = this.association;
      const log = a.log.child({ messageId: input.messageId, service: `C-${kind.service.toUpperCase()}`, model: kind.model });
      return collectingSink((identifier) => {
        const req = { model: kind.model, transferSyntax, identifier, calledAeTitle: this.ctx.calledAeTitle, callingAeTitle: this.ctx.callingAeTitle, log };
        if (kind.service === 'find') {
          a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cFindScp', input: { ...input, find: (emit) => runFind(qr, req, emit) } });
        } else if (kind.service === 'move') {
          const destination = command.MoveDestination ?? '';
          a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cMoveScp', input: { ...input, retrieve: (progress) => runMove(qr, req, destination, progress) } });
        } else {
          const back = new RequesterSender(qr.spool, { associationId: a.id, machine: a.machine, contexts: a.contexts, scpRoleClasses: this.requestorScpRoles, dimseTimeoutMs: this.listener.dimseTimeoutMs }, log);
          a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service: 'cGetScp', input: { ...input, retrieve: (progress) => runGet(qr, req, back, progress) } });
        }
      }, {
        maxBytes: MAX_IDENTIFIER_BYTES,
        // Larger than any real identifier: drained, not held, and answered C000 (property 3).
        exceeded: () => {
          log.warn({ limit: MAX_IDENTIFIER_BYTES }, 'Q/R identifier too large: refused');
          const refused = () => ({ done: Promise.resolve({ status: Status.UNABLE_TO_PROCESS, errorComment: `identifier larger than ${MAX_IDENTIFIER_BYTES} bytes` }), cancel: () => {} });
          const service = kind.service === 'find' ? 'cFindScp' : kind.service === 'move' ? 'cMoveScp' : 'cGetScp';
          a.machine.send({ type: 'DIMSE_REQUEST_RECEIVED', service, input: { ...input, find: refused, retrieve: refused } });
        },
      });
    };
  }

  /** The dataset has fully arrived (or failed): tell its C-STORE machine. */
  private toTransaction(messageId: number, verdict: StoreVerdict): void {
    const pending = this.pending.get(messageId);
    if (pending) pending.verdict = verdict;
    // By its id among the association's children: a Message ID is unique only among outstanding
    // requests (PS3.7), so it cannot be a system-wide systemId.
    const child = this.association.machine.getSnapshot().children[transactionId(messageId)];
    if (!verdict.ok) {
      if (pending) {
        this.pending.delete(messageId);
        void pending.sink.discard();
      }
      this.association.log.warn({ messageId, status: verdict.status, why: verdict.errorComment }, 'instance refused');
      child?.send({ type: 'DATASET_FAILED', status: verdict.status, errorComment: verdict.errorComment });
      return;
    }
    const decision = this.route(verdict.keys.dataset);
    if (decision?.reject) {
      this.toTransaction(messageId, { ok: false, status: decision.reject.status, errorComment: decision.reject.comment });
      return;
    }
    if (pending) pending.decision = decision;
    child?.send({ type: 'DATASET_RECEIVED' });
  }

  /** Which rules match this instance and what they decide. */
  private route(dataset: Record<string, unknown>): RoutingDecision | undefined {
    if (!this.ruleSet) return undefined;
    const { callingAeTitle, calledAeTitle, listener, remoteAddress, tlsSubject } = this.ctx;
    const association = { callingAeTitle, calledAeTitle, listener, remoteAddress, ...(tlsSubject !== undefined ? { tlsSubject } : {}) };
    const decision = evaluate(this.ruleSet, { association, dataset });
    this.association.log.debug({ rules: decision.matchedRules, forward: decision.forward.map((f) => f.peer), drop: decision.drop }, 'routed');
    return decision;
  }

  /** Makes the instance durable and routed (the C-STORE machine's store, via its input). */
  async commit(messageId: number): Promise<StoreResult> {
    const pending = this.pending.get(messageId);
    this.pending.delete(messageId);
    if (!pending || !pending.verdict?.ok) return { status: Status.PROCESSING_FAILURE, errorComment: 'no dataset received' };
    const routing = this.listener.routing;
    const holder = routing?.completion;
    // Forwards of rules with a trigger wait for their series/study (without a tracker: sent at once).
    const held = holder ? (pending.decision?.forward ?? []).filter((f) => f.completion) : [];
    const forward = (pending.decision?.forward ?? []).filter((f) => !held.includes(f));
    // One info line per instance (the store's 'instance stored') says where it goes: forwarded to which
    // peers now, held for completion, dropped by which rules, or forward: [] when no rule forwards it.
    const log = this.association.log.child({ messageId, ...(pending.decision ? routedFields(pending.decision, forward, held) : {}) });
    let holdNotes: HoldNote[] = [];
    const prefetch = pending.decision?.prefetch && routing?.prefetch;
    const keys = pending.verdict.keys;
    let prefetchJobs: string[] = [];
    const skipped: string[] = [];
    // The forward decisions are queued in the instance's own index transaction (DESIGN property 1);
    // a new study's prefetch jobs are planned in it too, so a study triggers once, durably.
    const enqueue = routing && (forward.length > 0 || held.length > 0 || prefetch)
      ? (record: InstanceRecord) => {
          if (held.length > 0) holdNotes = holder!.hold(record, held, { seriesDescription: textOf(keys.dataset.SeriesDescription) });
          if (prefetch) prefetchJobs = prefetch.plan(pending.decision!.prefetch!, { studyInstanceUid: record.studyInstanceUid, patientId: keys.patientId, issuerOfPatientId: keys.issuerOfPatientId, dataset: keys.dataset });
          for (const f of forward) {
            if (isSkipped(routing.queue.enqueue(queueItemFor(f, f.rule, record)))) skipped.push(f.peer);
          }
        }
      : undefined;
    // The row the commit wrote, as its transaction gave it: the instance-stored event reads no index again.
    let committed: InstanceRecord | undefined;
    const result = await pending.sink.commit(pending.verdict.keys, this.ctx, log, (record) => {
      committed = record;
      enqueue?.(record);
    });
    if (result.status === Status.SUCCESS && prefetch && prefetchJobs.length > 0) prefetch.start(prefetchJobs);
    if (result.status === Status.SUCCESS && !pending.decision?.drop && forward.length > 0) routing?.wake(forward.map((f) => f.peer));
    // Completion tracking subscribes to this event (the group machines start or hear of the instance).
    if (result.status === Status.SUCCESS && this.listener.events.observed && committed) this.stored(committed, forward, held, skipped, holdNotes);
    if (result.status === Status.SUCCESS && this.listener.onStored) {
      const k = pending.verdict.keys;
      this.listener.onStored({ sopInstanceUid: k.sopInstanceUid ?? '', studyInstanceUid: k.studyInstanceUid ?? '', seriesInstanceUid: k.seriesInstanceUid ?? '', patientId: k.patientId ?? '', ...(k.issuerOfPatientId ? { issuerOfPatientId: k.issuerOfPatientId } : {}) });
    }
    return result;
  }

  /** The instance-stored domain event, from the row just committed. */
  private stored(record: InstanceRecord, forward: { peer: string }[], held: { peer: string }[], skipped: string[], completion: HoldNote[]): void {
    const sopInstanceUid = record.sopInstanceUid;
    this.listener.events.emit({
      type: 'instance-stored', ...this.eventParties(), sopInstanceUid, sopClassUid: record.sopClassUid, seriesInstanceUid: record.seriesInstanceUid, studyInstanceUid: record.studyInstanceUid,
      modality: record.modality, patientId: record.patientId, patientName: record.patientName, bytes: record.size,
      queued: forward.map((f) => f.peer).filter((p) => !skipped.includes(p)), held: held.map((f) => f.peer), skipped, completion,
    });
  }

  private onClosed(): void {
    for (const { sink } of this.pending.values()) void sink.discard();
    this.pending.clear();
    for (const child of Object.values(this.association.machine.getSnapshot().children)) {
      child?.send({ type: 'ASSOCIATION_ENDED', reason: 'transport closed' });
    }
    this.association.log.info('connection closed');
    if (this.established) this.listener.events?.emit({ type: 'association-closed', ...this.eventParties() });
    this.listener.ref.send({ type: 'CONNECTION_CLOSED', associationId: this.association.id });
  }
}

/** The routing outcome as log fields. */
function routedFields(decision: RoutingDecision, forward: { peer: string }[], held: { peer: string }[]): Record<string, unknown> {
  if (decision.drop) return { droppedBy: decision.matchedRules };
  return { forward: forward.map((f) => f.peer), ...(held.length > 0 ? { held: held.map((f) => f.peer) } : {}) };
}

function textOf(v: unknown): string | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}

/** A Q/R identifier is a few hundred bytes; one past this is refused, not held. */
const MAX_IDENTIFIER_BYTES = 1 << 20;

/** Swallows a dataset nobody will store, then reports its end. */
function drainSink(onEnd?: () => void): DatasetSink {
  return { write: () => true, drained: () => Promise.resolve(), end: () => onEnd?.() };
}
