// The spool's index read as a Query/Retrieve information model (PS3.4 C.6.1 / C.6.2): what the router
// holds, grouped at PATIENT, STUDY, SERIES or IMAGE level, with the attributes the index keeps. Read
// only; the spool is not changed. `entitiesAt` is pure (records in, entities out); `queryIndex` reads.
import type { QueryLevel } from '../../protocol/dataset-encode.ts';
import { entityMatcher, matchingType, UNIQUE_KEYS } from '../../protocol/qr-matching.ts';
import type { InstanceRecord, Spool } from './spool.ts';

/** An entity: keyword → decoded text, for the attributes the index keeps at its level. */
export type IndexEntity = Record<string, string | undefined>;

const PATIENT_KEYS = ['PatientID', 'IssuerOfPatientID', 'PatientName'] as const;
const STUDY_KEYS = ['StudyInstanceUID', 'StudyDate', 'AccessionNumber', 'ModalitiesInStudy', 'SOPClassesInStudy', 'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances'] as const;
const SERIES_KEYS = ['SeriesInstanceUID', 'Modality', 'NumberOfSeriesRelatedInstances'] as const;
const IMAGE_KEYS = ['SOPInstanceUID', 'SOPClassUID'] as const;

/** What the index can match on and return at each level (the entity's own keys and those above it). */
export const INDEX_KEYS: Readonly<Record<QueryLevel, ReadonlySet<string>>> = {
  PATIENT: new Set([...PATIENT_KEYS, 'NumberOfPatientRelatedStudies', 'NumberOfPatientRelatedSeries', 'NumberOfPatientRelatedInstances']),
  STUDY: new Set([...PATIENT_KEYS, ...STUDY_KEYS]),
  SERIES: new Set([...PATIENT_KEYS, 'StudyInstanceUID', 'StudyDate', 'AccessionNumber', ...SERIES_KEYS]),
  IMAGE: new Set([...PATIENT_KEYS, 'StudyInstanceUID', 'StudyDate', 'AccessionNumber', 'SeriesInstanceUID', 'Modality', ...IMAGE_KEYS]),
};

const groupKey: Record<QueryLevel, (r: InstanceRecord) => string> = {
  // A patient is its ID qualified by its issuer: the same ID from two issuers is two patients.
  PATIENT: (r) => `${r.patientId}\u0000${r.issuerOfPatientId ?? ''}`,
  STUDY: (r) => r.studyInstanceUid,
  SERIES: (r) => r.seriesInstanceUid,
  IMAGE: (r) => r.sopInstanceUid,
};

const distinct = (xs: (string | undefined)[]) => [...new Set(xs.filter((x): x is string => x !== undefined && x !== ''))];

/** The entities at `level` the records make up, in first-seen order. */
export function entitiesAt(level: QueryLevel, records: Iterable<InstanceRecord>): IndexEntity[] {
  const groups = new Map<string, InstanceRecord[]>();
  for (const r of records) {
    const k = groupKey[level](r);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => {
    const first = g[0];
    const e: IndexEntity = { PatientID: first.patientId, IssuerOfPatientID: first.issuerOfPatientId, PatientName: first.patientName };
    if (level === 'PATIENT') {
      e.NumberOfPatientRelatedStudies = String(distinct(g.map((r) => r.studyInstanceUid)).length);
      e.NumberOfPatientRelatedSeries = String(distinct(g.map((r) => r.seriesInstanceUid)).length);
      e.NumberOfPatientRelatedInstances = String(g.length);
      return e;
    }
    Object.assign(e, { StudyInstanceUID: first.studyInstanceUid, StudyDate: first.studyDate, AccessionNumber: first.accessionNumber });
    if (level === 'STUDY') {
      e.ModalitiesInStudy = distinct(g.map((r) => r.modality)).join('\\') || undefined;
      e.SOPClassesInStudy = distinct(g.map((r) => r.sopClassUid)).join('\\');
      e.NumberOfStudyRelatedSeries = String(distinct(g.map((r) => r.seriesInstanceUid)).length);
      e.NumberOfStudyRelatedInstances = String(g.length);
      return e;
    }
    Object.assign(e, { SeriesInstanceUID: first.seriesInstanceUid, Modality: first.modality });
    if (level === 'SERIES') {
      e.NumberOfSeriesRelatedInstances = String(g.length);
      return e;
    }
    return Object.assign(e, { SOPInstanceUID: first.sopInstanceUid, SOPClassUID: first.sopClassUid });
  });
}

export type IndexMatches = { entities: IndexEntity[]; /** Non-universal keys the index cannot match (ignored: FF01). */ unsupported: string[] };

/** The entities at `level` whose attributes match `keys` (decoded text; '' universal). */
export function matchIndex(level: QueryLevel, records: Iterable<InstanceRecord>, keys: Readonly<Record<string, string>>): IndexMatches {
  // What cannot be matched depends on the keys alone, not on which rows were read.
  const { matches, unsupported } = entityMatcher(keys, INDEX_KEYS[level]);
  return { entities: entitiesAt(level, records).filter((e) => matches(e)), unsupported };
}

/**
 * The rows a query can match, read through an index when the identifier allows: one Study Instance
 * UID or a UID list (the by-study index, each study once), else a single-value Patient ID (the
 * by-patient index); otherwise every row. Always a superset of the matches: the keys are matched after.
 */
export function candidates(spool: Spool, level: QueryLevel, keys: Readonly<Record<string, string>>): InstanceRecord[] {
  const study = keys.StudyInstanceUID;
  // At PATIENT level a study key is not matched (FF01): narrowing by it would change the answer.
  if (study !== undefined && INDEX_KEYS[level].has('StudyInstanceUID') && matchingType('UI', study) !== 'universal') {
    // A UI takes no wildcards: a single value or a UID list.
    const uids = [...new Set(study.split('\\').map((u) => u.trim()).filter((u) => u !== ''))];
    return uids.flatMap((u) => spool.list({ studyInstanceUid: u }));
  }
  const patient = keys.PatientID;
  if (patient !== undefined && matchingType('LO', patient) === 'single' && spool.indexesPatients) {
    const rows = spool.list({ patientId: patient.trim() });
    if (level === 'PATIENT') return rows;
    // Whole studies: an entity below PATIENT level is built from all its rows, as reading every row
    // would build it (a study some of whose instances carry another Patient ID included).
    return [...new Set(rows.map((r) => r.studyInstanceUid))].flatMap((u) => spool.list({ studyInstanceUid: u }));
  }
  return spool.list();
}

/** Query what the spool holds (through an index when the identifier names a study or a patient). */
export function queryIndex(spool: Spool, level: QueryLevel, keys: Readonly<Record<string, string>>): IndexMatches {
  return matchIndex(level, candidates(spool, level, keys), keys);
}

/** The records a C-MOVE identifier names (the keys of its level and those above), from the index. */
export function recordsFor(spool: Spool, level: QueryLevel, keys: Readonly<Record<string, string>>): InstanceRecord[] {
  const own = UNIQUE_KEYS[level][0];
  // Without its level's unique key an identifier names nothing (never "everything").
  if (!keys[own] || keys[own].trim() === '' || /[*?]/.test(keys[own])) return [];
  const moveKeys = pickMoveKeys(level, keys);
  const records = candidates(spool, 'IMAGE', moveKeys);
  const { entities } = matchIndex('IMAGE', records, moveKeys);
  const wanted = new Set(entities.map((e) => e.SOPInstanceUID));
  return records.filter((r) => wanted.has(r.sopInstanceUid));
}

/** A C-MOVE identifier holds unique keys only (PS3.4 C.4.2.2.1): those of its level and above. */
function pickMoveKeys(level: QueryLevel, keys: Readonly<Record<string, string>>): Record<string, string> {
  // Patient ID comes with its issuer when the identifier gives one.
  const order = ['PatientID', 'IssuerOfPatientID', 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];
  const upTo = { PATIENT: 2, STUDY: 3, SERIES: 4, IMAGE: 5 }[level];
  return Object.fromEntries(order.slice(0, upTo).filter((k) => keys[k] !== undefined && keys[k].trim() !== '').map((k) => [k, keys[k]]));
}
