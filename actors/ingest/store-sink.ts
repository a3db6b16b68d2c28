// Where a C-STORE's dataset goes while it arrives: straight into a spool file (after a Part-10
// header built from the command and the negotiated transfer syntax), through the dataset walker
// (is it complete? where does Pixel Data start?), keeping only the bytes before Pixel Data for the
// index. Memory is bounded by that header, never by the instance.
// Deflated Explicit VR LE (PS3.5 A.5) is inflated as it arrives and the inflated bytes are walked
// the same way: the whole stream must inflate, or the instance is refused (never acknowledged).
import { createInflateRaw } from 'node:zlib';
import type { InflateRaw } from 'node:zlib';
import type { Logger } from 'pino';
import type { DatasetSink } from '../net/association.ts';
import type { IncomingInstance, InstanceRecord, Spool } from './spool.ts';
import { SpoolError } from './spool.ts';
import type { StoreResult } from '../../machines/dimse/c-store-scp.machine.ts';
import type { Command } from '../../protocol/dimse.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';
import type { InstanceKeys } from '../../protocol/dataset-header.ts';
import { DatasetWalker } from '../../protocol/dataset-walker.ts';
import { part10Header } from '../../protocol/part10.ts';
import { Status } from '../../protocol/status.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, transferSyntax } from '../../protocol/uids.ts';

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
  private readonly walker: DatasetWalker;
  private readonly deflated: boolean;
  /** Deflated only: inflates the dataset as it arrives, for the walker; done when it ended or failed. */
  private readonly inflater: InflateRaw | undefined;
  private inflated: Promise<void> = Promise.resolve();
  private inflateError: Error | undefined;
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
    // Deflated: the inflated bytes are an Explicit VR LE dataset (the syntax's table entry says so).
    this.walker = DatasetWalker.forSyntax(opts.transferSyntaxUid);
    if (this.deflated) {
      const inflater = createInflateRaw({ chunkSize: 256 * 1024 });
      inflater.on('data', (chunk: Buffer) => this.walk(chunk));
      this.inflated = new Promise((resolve) => {
        inflater.once('end', resolve);
        inflater.once('close', resolve); // destroyed by discard() before the end
        inflater.once('error', (err) => {
          this.inflateError = err;
          resolve();
        });
      });
      this.inflater = inflater;
    }
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
    let inflaterReady = true;
    if (!this.inflater) this.walk(data);
    // Copy: the fragment is a view into a socket buffer, and zlib works on it after we return.
    else if (!this.inflateError) inflaterReady = this.inflater.write(Uint8Array.prototype.slice.call(data));
    try {
      return this.incoming.write(data) && inflaterReady;
    } catch (err) {
      this.writeError = err;
      return inflaterReady;
    }
  }

  /** The dataset bytes (inflated if Deflated) through the walker, keeping those before Pixel Data. */
  private walk(data: Uint8Array): void {
    const before = this.walker.bytesSeen;
    this.walker.push(data);
    const pixelAt = this.walker.pixelDataOffset;
    if (pixelAt === undefined) this.keep(data);
    else if (pixelAt > before) this.keep(data.subarray(0, pixelAt - before));
  }

  drained(): Promise<void> {
    const inflater = this.inflater;
    if (!inflater?.writableNeedDrain || this.inflateError) return this.incoming.drained();
    // The inflater falls behind (it works on the thread pool): the socket waits for it too.
    const caughtUp = new Promise<void>((resolve) => {
      inflater.once('drain', resolve);
      void this.inflated.then(resolve);
    });
    return Promise.all([this.incoming.drained(), caughtUp]).then(() => undefined);
  }

  end(): void {
    if (!this.inflater) {
      this.onEnd(this.verdict());
      return;
    }
    this.inflater.end();
    void this.inflated.then(() => this.onEnd(this.verdict()));
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
    if (this.inflateError) {
      return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: `deflated dataset does not inflate: ${this.inflateError.message}`.slice(0, 64) };
    }
    let header = Buffer.concat(this.prefix);
    const walk = this.walker.end();
    if (!walk.complete) {
      return { ok: false, status: Status.CANNOT_UNDERSTAND, errorComment: `dataset incomplete: ${walk.problem ?? 'truncated'}` };
    }
    header = header.subarray(0, walk.headerLength);
    let keys: InstanceKeys;
    try {
      keys = parseHeader(header, this.deflated ? EXPLICIT_VR_LITTLE_ENDIAN : this.transferSyntaxUid);
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
        ...(keys.issuerOfPatientId ? { issuerOfPatientId: keys.issuerOfPatientId } : {}),
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
    this.inflater?.destroy();
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
