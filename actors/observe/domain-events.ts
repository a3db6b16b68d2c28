// The router's domain events (issue 14): what happened to instances and associations, in the words of
// the domain, published as RxJS streams that the console, metrics, audit and completion tracking
// subscribe to. The places that know emit them (the acceptor and listener on receipt, the forwarder on
// an outcome); they carry facts, never bytes (bytes flow through node streams with backpressure; RxJS
// has none). Emitting costs one check when nobody subscribes.
import { filter, Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import type { HoldNote } from '../jobs/completion.ts';

/** Why an association (or a connection before it) was refused. */
export type RejectionReason =
  | 'called-ae-not-recognized'
  | 'calling-ae-not-recognized'
  | 'calling-ae-not-bound-to-certificate'
  | 'source-address-not-allowed'
  | 'rate-limit'
  | 'local-limit-exceeded'
  | 'tls-handshake'
  | 'other';

export type InstanceStored = {
  type: 'instance-stored';
  at: number;
  listener: string;
  /** The association it came on. */
  association: string;
  callingAe: string;
  calledAe: string;
  address: string;
  sopInstanceUid: string;
  sopClassUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  modality?: string;
  /** PHI: shown only with inspect.showPhi. */
  patientId?: string;
  patientName?: string;
  bytes: number;
  /** Peers an item was queued for now, held for completion, or skipped as a duplicate. */
  queued: string[];
  held: string[];
  skipped: string[];
  /** What the instance's transaction decided for completion groups: the tracker acts on it once committed. */
  completion: HoldNote[];
};

export type InstanceForwarded = {
  type: 'instance-forwarded'; at: number; peer: string; sopInstanceUid: string; sopClassUid: string; studyInstanceUid: string; bytes: number; status: number;
  /** PHI (for the audit trail). */
  patientId: string;
};

export type ForwardFailed = {
  type: 'forward-failed';
  at: number;
  peer: string;
  sopInstanceUid: string;
  studyInstanceUid: string;
  /** retry: will be tried again at nextAttemptAt; dead: a dead letter. */
  outcome: 'retry' | 'dead';
  error: string;
  status?: number;
  attempts: number;
  nextAttemptAt?: string;
};

export type AssociationOpened = { type: 'association-opened'; at: number; listener: string; association: string; callingAe: string; calledAe: string; address: string };
export type AssociationClosed = Omit<AssociationOpened, 'type'> & { type: 'association-closed' };

export type AssociationRejected = {
  type: 'association-rejected';
  at: number;
  listener: string;
  reason: RejectionReason;
  /** Empty when the connection was refused before any DICOM exchange (address, rate limit, TLS). */
  callingAe: string;
  calledAe: string;
  address: string;
  detail: string;
};

export type DomainEvent = InstanceStored | InstanceForwarded | ForwardFailed | AssociationOpened | AssociationClosed | AssociationRejected;

/** An event as an emitter gives it: its time is stamped on emission unless given. */
export type NewDomainEvent = DomainEvent extends infer E ? (E extends DomainEvent ? Omit<E, 'at'> & { at?: number } : never) : never;

export class DomainEvents {
  private readonly subject = new Subject<DomainEvent>();
  /** Every domain event, as it happens. */
  readonly all$: Observable<DomainEvent> = this.subject.asObservable();

  /** Whether anybody listens: an emitter may skip building an event nobody reads. */
  get observed(): boolean {
    return this.subject.observed;
  }

  /**
   * Publishes one event (stamped now if it has no time). Every subscriber must catch its own errors:
   * RxJS reports a subscriber's throw asynchronously as an uncaught error, which would end the process.
   */
  emit(event: NewDomainEvent): void {
    if (!this.subject.observed) return;
    this.subject.next({ ...event, at: event.at ?? Date.now() } as DomainEvent);
  }

  /** Events of one type. */
  of<T extends DomainEvent['type']>(type: T): Observable<Extract<DomainEvent, { type: T }>> {
    return this.all$.pipe(filter((e): e is Extract<DomainEvent, { type: T }> => e.type === type));
  }

  complete(): void {
    this.subject.complete();
  }
}

/** The rejection reason of an A-ASSOCIATE-RJ (PS3.8 Table 9-21), or of a refused certificate binding. */
export function rejectionReason(rj: { result: number; source: number; reason: number }, tlsBinding = false): RejectionReason {
  if (tlsBinding) return 'calling-ae-not-bound-to-certificate';
  if (rj.source === 1 && rj.reason === 7) return 'called-ae-not-recognized';
  if (rj.source === 1 && rj.reason === 3) return 'calling-ae-not-recognized';
  if (rj.source === 3 && rj.reason === 2) return 'local-limit-exceeded';
  return 'other';
}
