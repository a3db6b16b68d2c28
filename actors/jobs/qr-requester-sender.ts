// C-GET sub-operations (PS3.4 C.4.3): each instance goes back to the requester as a C-STORE-RQ on the
// C-GET's own association, on a presentation context of its SOP class for which the requester took
// the SCP role (SCP/SCU Role Selection, PS3.7 D.3.3.4). Without that role the sub-operation fails
// (it is never sent) and the log says why. Each C-STORE is an SCU transaction machine of that
// association, with a Message ID of its own range so it never meets one of the requester's.
import type { Logger } from 'pino';
import type { AssociationMachineRef } from '../net/association.ts';
import { transactionId } from '../../machines/association.machine.ts';
import type { DimseOutcome } from '../../machines/dimse/dimse.events.ts';
import { CommandField, Priority } from '../../protocol/dimse.ts';
import type { AcceptedContext } from '../../protocol/negotiation.ts';
import { formatStatus, statusCategory } from '../../protocol/status.ts';
import type { InstanceRecord, Spool } from '../ingest/spool.ts';
import { contextFor, storedSource } from './qr-destination.ts';
import type { SubOperationResult, SubOperationSender } from './qr-destination.ts';

/** Our C-STORE-RQs on an acceptor's association are numbered from here (the requester's usually start at 1). */
const FIRST_MESSAGE_ID = 0x8000;

export type RequesterAssociation = {
  associationId: string;
  machine: AssociationMachineRef;
  contexts: ReadonlyMap<number, AcceptedContext>;
  /** SOP classes for which the requester accepted to act as SCP. */
  scpRoleClasses: ReadonlySet<string>;
  dimseTimeoutMs: number;
};

export class RequesterSender implements SubOperationSender {
  readonly name = 'requester';
  readonly #a: RequesterAssociation;
  readonly #spool: Spool;
  readonly #log: Logger;
  readonly #refused = new Set<string>();
  #nextId = FIRST_MESSAGE_ID;

  constructor(spool: Spool, association: RequesterAssociation, log: Logger) {
    this.#spool = spool;
    this.#a = association;
    this.#log = log;
  }

  plan(): void {}
  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async send(record: InstanceRecord): Promise<SubOperationResult> {
    if (!this.#a.scpRoleClasses.has(record.sopClassUid)) {
      if (!this.#refused.has(record.sopClassUid)) {
        this.#refused.add(record.sopClassUid);
        this.#log.warn({ sopClassUid: record.sopClassUid }, 'C-GET sub-operation failed: the requester did not take the SCP role for this SOP class');
      }
      return { result: 'failed' };
    }
    const context = contextFor([...this.#a.contexts.values()], record);
    if (!context) {
      this.#log.warn({ sopClassUid: record.sopClassUid, transferSyntax: record.transferSyntaxUid }, 'C-GET sub-operation failed: no accepted context we can send this instance on');
      return { result: 'failed' };
    }
    const source = await storedSource(this.#spool, record, context.transferSyntax);
    if ('failure' in source) {
      this.#log.warn({ sopInstanceUid: record.sopInstanceUid, why: source.failure }, 'C-GET sub-operation failed');
      return { result: 'failed' };
    }
    const messageId = this.#newMessageId();
    const outcome = await new Promise<DimseOutcome>((resolve) => {
      const sub = this.#a.machine.on('DIMSE_COMPLETED', ({ outcome }) => {
        if (outcome.messageId !== messageId) return;
        sub.unsubscribe();
        resolve(outcome);
      });
      this.#a.machine.send({
        type: 'DIMSE_REQUEST_STARTED',
        service: 'scuRequest',
        input: {
          associationId: this.#a.associationId, messageId, contextId: context.id, dimseTimeoutMs: this.#a.dimseTimeoutMs, dataset: source,
          command: {
            CommandField: CommandField.C_STORE_RQ, MessageID: messageId, AffectedSOPClassUID: record.sopClassUid,
            AffectedSOPInstanceUID: record.sopInstanceUid, Priority: Priority.MEDIUM, CommandDataSetType: 0x0000,
          },
        },
      });
    });
    if (outcome.status === undefined) return { result: 'lost', why: outcome.failure ?? 'no response' };
    const category = statusCategory(outcome.status);
    if (category === 'success') return { result: 'completed' };
    if (category === 'warning') return { result: 'warning' };
    this.#log.warn({ sopInstanceUid: record.sopInstanceUid, status: formatStatus(outcome.status), errorComment: outcome.errorComment }, 'C-GET sub-operation failed');
    return { result: 'failed' };
  }

  /** A Message ID no transaction of the association uses now. */
  #newMessageId(): number {
    const children = this.#a.machine.getSnapshot().children;
    while (children[transactionId(this.#nextId)]) this.#nextId = this.#nextId >= 0xffff ? FIRST_MESSAGE_ID : this.#nextId + 1;
    const id = this.#nextId;
    this.#nextId = id >= 0xffff ? FIRST_MESSAGE_ID : id + 1;
    return id;
  }
}
