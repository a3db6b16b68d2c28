// The audit trail: who sent what to whom, and when, as JSON lines in the data folder (one file a
// day) and optionally to a syslog collector (RFC 5424 over UDP). Each record follows the shape of
// the DICOM audit messages of PS3.15 A.5 (EventIdentification, ActiveParticipant,
// ParticipantObjectIdentification); unlike the operational log, it names the patient, as an
// audit trail must: it lives beside the images and is protected like them.
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import type { PeerConfig } from '../../config/config.ts';
import type { DomainEvents } from './domain-events.ts';
import { TransferBatches } from './audit-transfers.ts';
import type { TransferBatch } from './audit-transfers.ts';

/** PS3.16 CID 400 / 401 codes used here. */
const EVENT = {
  applicationActivity: { code: '110100', meaning: 'Application Activity' },
  instancesTransferred: { code: '110104', meaning: 'DICOM Instances Transferred' },
  userAuthentication: { code: '110114', meaning: 'User Authentication' },
} as const;
const TYPE = {
  applicationStart: { code: '110120', meaning: 'Application Start' },
  applicationStop: { code: '110121', meaning: 'Application Stop' },
  login: { code: '110122', meaning: 'Login' },
  logout: { code: '110123', meaning: 'Logout' },
} as const;

type Code = { code: string; meaning: string };
/** 0 success, 4 minor failure, 8 serious failure (PS3.15 A.5.1). */
type Outcome = 0 | 4 | 8;

export type AuditRecord = {
  EventIdentification: { EventID: Code; EventActionCode: 'C' | 'R' | 'E'; EventDateTime: string; EventOutcomeIndicator: Outcome; EventTypeCode?: Code[]; EventOutcomeDescription?: string };
  ActiveParticipant: { UserID: string; NetworkAccessPointID?: string; UserIsRequestor: boolean; RoleIDCode?: Code }[];
  AuditSourceIdentification: { AuditSourceID: string };
  ParticipantObjectIdentification?: {
    ParticipantObjectTypeCode: 1 | 2; ParticipantObjectTypeCodeRole: number; ParticipantObjectIDTypeCode: Code; ParticipantObjectID: string;
    /** A study's SOP classes, each with how many instances and their UIDs (PS3.15 A.5.3.3). */
    ParticipantObjectDescription?: { SOPClass: { UID: string; NumberOfInstances: number; Instance: { UID: string }[] }[] };
  }[];
};

export type Party = { aeTitle: string; address?: string };
export type InstanceRef = { studyInstanceUid: string; sopClassUid: string; sopInstanceUid: string; patientId: string };

const SOURCE = { code: '110153', meaning: 'Source Role ID' };
const DESTINATION = { code: '110152', meaning: 'Destination Role ID' };
const STUDY_UID = { code: '110180', meaning: 'Study Instance UID' };
const PATIENT_ID = { code: '2', meaning: 'Patient Number' };

export class AuditTrail {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly syslog: { socket: Socket; host: string; port: number } | undefined;
  private readonly source = `dicom-router@${hostname()}`;
  private chain: Promise<void> = Promise.resolve();
  private pending: string[] = [];
  private file: { path: string; handle: FileHandle } | undefined;
  private readonly transfers = new TransferBatches((batch) => this.transferRecord(batch));

  constructor(dir: string, log: Logger, syslog?: { host: string; port: number }) {
    this.dir = dir;
    this.log = log;
    this.syslog = syslog && { socket: createSocket(syslog.host.includes(':') ? 'udp6' : 'udp4'), ...syslog };
    this.syslog?.socket.unref();
  }

  /**
   * Records what the router's domain events say: associations established, refused (an A-ASSOCIATE-RJ;
   * a connection refused before any DICOM exchange names no AE and is in the log only) and ended;
   * instances received and forwarded.
   */
  subscribe(events: DomainEvents, peers: PeerConfig[]): Subscription {
    const peer = new Map(peers.map((p) => [p.name, p]));
    return events.all$.subscribe((e) => {
      try {
        if (e.type === 'association-closed') this.transfers.flushGroup(e.association); // its instances, before its logout
        if (e.type === 'association-opened' || e.type === 'association-closed') {
          this.association(e.type === 'association-opened' ? 'established' : 'ended', { aeTitle: e.callingAe, address: e.address }, { aeTitle: e.calledAe });
        } else if (e.type === 'association-rejected' && (e.callingAe || e.calledAe)) {
          this.association('refused', { aeTitle: e.callingAe, address: e.address }, { aeTitle: e.calledAe }, e.detail);
        } else if (e.type === 'instance-stored') {
          this.transfers.add('received', e.association, { aeTitle: e.callingAe, address: e.address }, { aeTitle: e.calledAe }, { studyInstanceUid: e.studyInstanceUid, sopClassUid: e.sopClassUid, sopInstanceUid: e.sopInstanceUid, patientId: e.patientId ?? '' }, 0, false);
        } else if (e.type === 'instance-forwarded') {
          const p = peer.get(e.peer);
          if (!p) return;
          this.transfers.add('forwarded', p.name, { aeTitle: p.callingAeTitle }, { aeTitle: p.aeTitle, address: `${p.host}:${p.port}` }, { studyInstanceUid: e.studyInstanceUid, sopClassUid: e.sopClassUid, sopInstanceUid: e.sopInstanceUid, patientId: e.patientId }, e.status, true);
        }
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'audit record could not be made');
      }
    });
  }

  applicationActivity(started: boolean): void {
    this.write(this.record(EVENT.applicationActivity, 'E', 0, [TYPE[started ? 'applicationStart' : 'applicationStop']], [{ UserID: this.source, UserIsRequestor: false }]));
  }

  /** An association established (or refused, with why), or ended. */
  association(kind: 'established' | 'refused' | 'ended', from: Party, to: Party, why?: string): void {
    const outcome: Outcome = kind === 'refused' ? 4 : 0;
    const record = this.record(EVENT.userAuthentication, 'E', outcome, [kind === 'ended' ? TYPE.logout : TYPE.login], parties(from, to));
    if (why) record.EventIdentification.EventOutcomeDescription = why;
    this.write(record);
  }

  /** Instances of one study received ('C', created here) or sent on ('R') over one association, with their SOP classes and patient. */
  private transferRecord(batch: TransferBatch): void {
    const record = this.record(EVENT.instancesTransferred, batch.action === 'received' ? 'C' : 'R', batch.status === 0 ? 0 : 4, undefined, parties(batch.from, batch.to));
    record.ParticipantObjectIdentification = [
      {
        ParticipantObjectTypeCode: 2, ParticipantObjectTypeCodeRole: 3, ParticipantObjectIDTypeCode: STUDY_UID, ParticipantObjectID: batch.studyInstanceUid,
        ParticipantObjectDescription: {
          SOPClass: [...batch.classes].map(([UID, uids]) => ({ UID, NumberOfInstances: uids.length, Instance: uids.map((u) => ({ UID: u })) })),
        },
      },
      { ParticipantObjectTypeCode: 1, ParticipantObjectTypeCodeRole: 1, ParticipantObjectIDTypeCode: PATIENT_ID, ParticipantObjectID: batch.patientId },
    ];
    this.write(record);
  }

  /** Resolves once everything written so far is on disk (for tests and shutdown). */
  flushed(): Promise<void> {
    this.transfers.flushAll();
    return this.chain;
  }

  close(): void {
    this.transfers.flushAll();
    this.syslog?.socket.close();
    const file = this.file;
    this.file = undefined;
    this.chain = this.chain.then(() => file?.handle.close());
  }

  private record(id: Code, action: 'C' | 'R' | 'E', outcome: Outcome, types: Code[] | undefined, participants: AuditRecord['ActiveParticipant']): AuditRecord {
    return {
      EventIdentification: { EventID: id, EventActionCode: action, EventDateTime: new Date().toISOString(), EventOutcomeIndicator: outcome, ...(types ? { EventTypeCode: types } : {}) },
      ActiveParticipant: participants,
      AuditSourceIdentification: { AuditSourceID: this.source },
    };
  }

  private write(record: AuditRecord): void {
    const line = JSON.stringify(record);
    const file = join(this.dir, `audit-${record.EventIdentification.EventDateTime.slice(0, 10)}.jsonl`);
    // One open file a day, appended to in order; records that arrive while a write runs go out together.
    this.pending.push(`${line}\n`);
    if (this.pending.length === 1) {
      this.chain = this.chain
        .then(async () => {
          if (this.file?.path !== file) {
            await this.file?.handle.close();
            await mkdir(this.dir, { recursive: true });
            this.file = { path: file, handle: await open(file, 'a') };
          }
          const batch = this.pending.join('');
          this.pending = [];
          await this.file.handle.appendFile(batch);
        })
        .catch((err: Error) => this.log.error({ err: err.message, file }, 'audit record could not be written'));
    }
    if (this.syslog) {
      // RFC 5424: <PRI>VERSION TIMESTAMP HOST APP-NAME PROCID MSGID SD MSG; facility 10 (authpriv), severity 5 (notice).
      const msg = `<85>1 ${record.EventIdentification.EventDateTime} ${hostname()} dicom-router ${process.pid} DICOM+RFC3881 - ${line}`;
      this.syslog.socket.send(msg, this.syslog.port, this.syslog.host, (err) => err && this.log.warn({ err: err.message }, 'audit record not sent to syslog'));
    }
  }
}

function parties(from: Party, to: Party): AuditRecord['ActiveParticipant'] {
  return [
    { UserID: from.aeTitle, ...(from.address ? { NetworkAccessPointID: from.address } : {}), UserIsRequestor: true, RoleIDCode: SOURCE },
    { UserID: to.aeTitle, ...(to.address ? { NetworkAccessPointID: to.address } : {}), UserIsRequestor: false, RoleIDCode: DESTINATION },
  ];
}
