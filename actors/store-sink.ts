// Where a C-STORE's dataset goes while it arrives: straight into a spool file (after a Part-10
// header built from the command and the negotiated transfer syntax), through the dataset walker
// (is it complete? where does Pixel Data start?), keeping only the bytes before Pixel Data for the
// index. Memory is bounded by that header, never by the instance.
import { inflateRawSync } from 'node:zlib';
import type { Logger } from 'pino';
import type { DatasetSink } from './association.ts';
import type { IncomingInstance, InstanceRecord, Spool } from './spool.ts';
import { SpoolError } from './spool.ts';
import type { StoreResult } from '../machines/dimse/c-store-scp.machine.ts';
import type { Command } from '../protocol/dimse.ts';
import { parseHeader } from '../protocol/dataset-header.ts';
import type { InstanceKeys } from '../protocol/dataset-header.ts';
import { DatasetWalker } from '../protocol/dataset-walker.ts';
import { part10Header } from '../protocol/part10.ts';
import { Status } from '../protocol/status.ts';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, transferSyntax } from '../protocol/uids.ts';

/** The attributes before Pixel Data are kept for indexing up to this size (RT structure sets can be large). */
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

export type StoreVerdict = { ok: true; keys: InstanceKeys } | { ok: false; status: number; errorComment: string };

export type ReceiveContext = {
  callingAeTitle: string;
  calledAeTitle: string;
  listener: string;
  remoteAddress: string;
};

export class StoreSink implements DatasetSink {
  readonly incoming: IncomingInstance;
  private readonly command: Command;
  private readonly transferSyntaxUid: string;
  private readonly walker: DatasetWalker | undefined;
  private readonly deflated: boolean;
  private readonly prefix: Uint8Array[] = [];
  private prefixBytes = 0;
  private received = 0;
  private writeError: unknown;
  private readonly onEnd: (verdict: StoreVerdict) => void;

  constructor(opts: {
    spool: Spool;
    command: Command;
    transferSyntaxUid: string;
    ctx: ReceiveContext;
    onEnd: (verdict: StoreVerdict) => void;
  }) {
    this.command = opts.command;
    this.transferSyntaxUid = opts.transferSyntaxUid;
    this.onEnd = opts.onEnd;
    const ts = transferSyntax(opts.transferSyntaxUid);
    this.deflated = ts?.deflated ?? false;
    // Deflated datasets are walked after inflating the kept prefix (see end()).
    this.walker = this.deflated ? undefined : new DatasetWalker({ explicitVr: ts?.explicitVr ?? false, littleEndian: ts?.littleEndian ?? true });
    this.incoming = opts.spool.begin(
      part10Header({
        sopClassUid: opts.command.AffectedSOPClassUID ?? '',
        sopInstanceUid: opts.command.AffectedSOPInstanceUID ?? '',
        transferSyntaxUid: opts.transferSyntaxUid,
        sourceAeTitle: opts.ctx.callingAeTitle,
        receivingAeTitle: opts.ctx.calledAeTitle,
        implementationClassUid: IMPLEMENTATION_CLASS_UID,
        implementationVersionName: IMPLEMENTATION_VERSION_NAME,
      }),
    );
  }

  write(data: Uint8Array): boolean {
    this.received += data.length;
    if (this.walker) {
      const before = this.walker.bytesSeen;
      this.walker.push(data);
      const pixelAt = this.walker.pixelDataOffset;
      if (pixelAt === undefined) this.keep(data);
      else if (pixelAt > before) this.keep(data.subarray(0, pixelAt - before));
    } else {
      this.keep(data);
    }
    try {
      return this.incoming.write(data);
    } catch (err) {
      this.writeError = err;
      return true;
    }
  }

  drained(): Promise<void> {
    return this.incoming.drained();
  }

  end(): void {
    this.onEnd(this.verdict());
  }

  private keep(data: Uint8Array): void {
    if (this.prefixBytes >= MAX_HEADER_BYTES) return;
    const take = data.subarray(0, MAX_HEADER_BYTES - this.prefixBytes);
    // Copy: the fragment is a view into a socket buffer.
    this.prefix.push(Uint8Array.prototype.slice.call(take));
    this.prefixBytes += take.length;
  }

  private verdict(): StoreVerdict {
    if (this.writeError) return spoolFailure(this.writeError);
    let header = Buffer.concat(this.prefix);
    if (this.walker) {
      const walk = this.walker.end();
      if (!walk.complete) {
        return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: `dataset incomplete: ${walk.problem ?? 'truncated'}` };
      }
      header = header.subarray(0, walk.headerLength);
    } else if (this.deflated) {
      try {
        header = inflateRawSync(header, { maxOutputLength: MAX_HEADER_BYTES * 4 });
      } catch {
        // A prefix cut mid-stream still inflates partly; only a stream that is not deflate at all fails.
        return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: 'deflated dataset does not inflate' };
      }
    }
    let keys: InstanceKeys;
    try {
      keys = parseHeader(header, this.deflated ? '1.2.840.10008.1.2.1' : this.transferSyntaxUid);
    } catch (err) {
      return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: `dataset unparseable: ${(err as Error).message}` };
    }
    if (keys.sopInstanceUid !== this.command.AffectedSOPInstanceUID) {
      return {
        ok: false,
        status: Status.CANNOT_UNDERSTAND,
        errorComment: `SOP Instance UID in dataset differs from the command's`,
      };
    }
    if (keys.sopClassUid !== this.command.AffectedSOPClassUID) {
      return { ok: false, status: Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, errorComment: `SOP Class UID in dataset differs from the command's` };
    }
    if (!keys.studyInstanceUid || !keys.seriesInstanceUid) {
      return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: 'Study or Series Instance UID missing' };
    }
    return { ok: true, keys };
  }

  /** Make the instance durable and indexed; the answer for the C-STORE-RSP. */
  async commit(keys: InstanceKeys, ctx: ReceiveContext, log: Logger, extra?: (record: InstanceRecord) => void): Promise<StoreResult> {
    try {
      const record: InstanceRecord = await this.incoming.commit({
        sopInstanceUid: keys.sopInstanceUid!,
        sopClassUid: keys.sopClassUid!,
        studyInstanceUid: keys.studyInstanceUid!,
        seriesInstanceUid: keys.seriesInstanceUid!,
        patientId: keys.patientId ?? '',
        patientName: keys.patientName,
        modality: keys.modality,
        accessionNumber: keys.accessionNumber,
        studyDate: keys.studyDate,
        transferSyntaxUid: this.transferSyntaxUid,
        callingAeTitle: ctx.callingAeTitle,
        calledAeTitle: ctx.calledAeTitle,
        listener: ctx.listener,
        remoteAddress: ctx.remoteAddress,
        receivedAt: new Date().toISOString(),
      }, extra);
      log.info({ sopInstanceUid: record.sopInstanceUid, sopClassUid: record.sopClassUid, size: record.size }, 'instance stored');
      // E.g. an unknown Specific Character Set term: rules saw its text as the default repertoire.
      if (keys.warnings.length > 0) log.warn({ sopInstanceUid: record.sopInstanceUid, warnings: keys.warnings }, 'dataset decoded leniently');
      return { status: Status.SUCCESS };
    } catch (err) {
      const failure = spoolFailure(err);
      log.error({ err: String(err) }, 'instance could not be stored');
      return failure.ok ? { status: Status.PROCESSING_FAILURE } : { status: failure.status, errorComment: failure.errorComment };
    }
  }

  async discard(): Promise<void> {
    await this.incoming.discard();
  }

  get bytesReceived(): number {
    return this.received;
  }
}

function spoolFailure(err: unknown): StoreVerdict & { ok: false } {
  if (err instanceof SpoolError && err.code === 'DISK_FULL') {
    return { ok: false, status: Status.OUT_OF_RESOURCES, errorComment: 'Out of resources: spool disk full' };
  }
  return { ok: false, status: Status.OUT_OF_RESOURCES, errorComment: `spool write failed: ${String(err as Error)}`.slice(0, 64) };
}
