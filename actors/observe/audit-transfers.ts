// "DICOM Instances Transferred" (PS3.15 A.5.3.3) describes a transfer of a study's instances between
// two AEs, with the SOP classes and how many of each: one record per study per association received,
// and per study per peer forwarded, not one per instance (a 3000-image CT was 3000 records, a JSON
// line and a file append each). Received instances are summed until their association closes;
// forwarded ones until their peer has been quiet for `quietMs`. The instance UIDs stay in the record.
import type { InstanceRef, Party } from './audit.ts';

export type TransferBatch = {
  action: 'received' | 'forwarded';
  from: Party;
  to: Party;
  studyInstanceUid: string;
  patientId: string;
  status: number;
  /** SOP Class UID → SOP Instance UIDs, in arrival order. */
  classes: Map<string, string[]>;
  count: number;
};

/** Past this many instances a batch is written and a new one begun (a record stays a sane size). */
const MAX_INSTANCES = 5000;

export class TransferBatches {
  #batches = new Map<string, { batch: TransferBatch; group: string; timer?: NodeJS.Timeout }>();
  #write: (batch: TransferBatch) => void;
  #quietMs: number;

  constructor(write: (batch: TransferBatch) => void, quietMs = 2000) {
    this.#write = write;
    this.#quietMs = quietMs;
  }

  /**
   * One instance transferred. `group` is what ends the batch: an association id (received: flushGroup
   * when it closes) or a peer (forwarded: after a quiet time).
   */
  add(action: TransferBatch['action'], group: string, from: Party, to: Party, instance: InstanceRef, status: number, flushWhenQuiet: boolean): void {
    const key = `${action}\u0000${group}\u0000${instance.studyInstanceUid}\u0000${instance.patientId}\u0000${status}`;
    let entry = this.#batches.get(key);
    if (!entry) {
      entry = { group, batch: { action, from, to, studyInstanceUid: instance.studyInstanceUid, patientId: instance.patientId, status, classes: new Map(), count: 0 } };
      this.#batches.set(key, entry);
    }
    const uids = entry.batch.classes.get(instance.sopClassUid) ?? [];
    if (uids.length === 0) entry.batch.classes.set(instance.sopClassUid, uids);
    uids.push(instance.sopInstanceUid);
    entry.batch.count++;
    if (entry.batch.count >= MAX_INSTANCES) return this.#flush(key);
    if (flushWhenQuiet) {
      if (entry.timer) entry.timer.refresh();
      else {
        entry.timer = setTimeout(() => this.#flush(key), this.#quietMs);
        entry.timer.unref();
      }
    }
  }

  /** Write every batch of `group` (its association closed). */
  flushGroup(group: string): void {
    for (const [key, entry] of this.#batches) if (entry.group === group) this.#flush(key);
  }

  /** Write every batch now (shutdown, or a reader waiting for the trail). */
  flushAll(): void {
    for (const key of [...this.#batches.keys()]) this.#flush(key);
  }

  #flush(key: string): void {
    const entry = this.#batches.get(key);
    if (!entry) return;
    this.#batches.delete(key);
    if (entry.timer) clearTimeout(entry.timer);
    this.#write(entry.batch);
  }
}
