import test from 'ava';
import { entitiesAt, matchIndex, recordsFor } from '../../../actors/ingest/index-query.ts';
import type { InstanceRecord, Spool } from '../../../actors/ingest/spool.ts';

const rec = (sop: string, series: string, study: string, patient: string, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  sopInstanceUid: sop, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: study, seriesInstanceUid: series, patientId: patient,
  patientName: 'DOE^JOHN', modality: 'CT', studyDate: '20230105', accessionNumber: 'ACC1', transferSyntaxUid: '1.2.840.10008.1.2.1',
  size: 1, path: 'x', callingAeTitle: 'A', calledAeTitle: 'B', listener: 'main', remoteAddress: '', receivedAt: '', ...extra,
});
const RECORDS = [
  rec('1.1.1.1', '1.1.1', '1.1', 'P1'),
  rec('1.1.1.2', '1.1.1', '1.1', 'P1'),
  rec('1.1.2.1', '1.1.2', '1.1', 'P1', { modality: 'SR' }),
  rec('2.1.1.1', '2.1.1', '2.1', 'P2', { patientName: 'ROE^JANE', studyDate: '20240310', accessionNumber: 'ACC2', modality: 'MR' }),
];

test('entities at each level, with counts and modalities', (t) => {
  t.deepEqual(entitiesAt('PATIENT', RECORDS).map((e) => [e.PatientID, e.NumberOfPatientRelatedStudies, e.NumberOfPatientRelatedSeries, e.NumberOfPatientRelatedInstances]), [['P1', '1', '2', '3'], ['P2', '1', '1', '1']]);
  const [study] = entitiesAt('STUDY', RECORDS);
  t.like(study, { StudyInstanceUID: '1.1', ModalitiesInStudy: 'CT\\SR', NumberOfStudyRelatedSeries: '2', NumberOfStudyRelatedInstances: '3', PatientName: 'DOE^JOHN' });
  t.deepEqual(entitiesAt('SERIES', RECORDS).map((e) => [e.SeriesInstanceUID, e.NumberOfSeriesRelatedInstances]), [['1.1.1', '2'], ['1.1.2', '1'], ['2.1.1', '1']]);
  t.is(entitiesAt('IMAGE', RECORDS).length, 4);
});

test('matching against the index: wildcard, range, UID list, single value, universal; unsupported keys listed', (t) => {
  const uids = (level: 'STUDY' | 'SERIES' | 'IMAGE', keys: Record<string, string>, key: string) => matchIndex(level, RECORDS, keys).entities.map((e) => e[key]);
  t.deepEqual(uids('STUDY', { PatientName: 'R*' }, 'StudyInstanceUID'), ['2.1']);
  t.deepEqual(uids('STUDY', { StudyDate: '20240101-' }, 'StudyInstanceUID'), ['2.1']);
  t.deepEqual(uids('STUDY', { ModalitiesInStudy: 'SR' }, 'StudyInstanceUID'), ['1.1']);
  t.deepEqual(uids('SERIES', { SeriesInstanceUID: '1.1.2\\2.1.1' }, 'SeriesInstanceUID'), ['1.1.2', '2.1.1']);
  t.deepEqual(uids('IMAGE', { StudyInstanceUID: '1.1', SeriesInstanceUID: '1.1.1', SOPInstanceUID: '' }, 'SOPInstanceUID'), ['1.1.1.1', '1.1.1.2']);
  t.deepEqual(matchIndex('STUDY', RECORDS, { PatientSex: 'F', AccessionNumber: 'ACC1' }), { entities: [entitiesAt('STUDY', RECORDS)[0]], unsupported: ['PatientSex'] });
});

test('Issuer of Patient ID: kept, returned and matched; the same ID from two issuers is two patients; rows without it still read', (t) => {
  const records = [
    rec('3.1.1.1', '3.1.1', '3.1', 'SAME', { issuerOfPatientId: 'HOSP-A' }),
    rec('3.2.1.1', '3.2.1', '3.2', 'SAME', { issuerOfPatientId: 'HOSP-B' }),
    rec('3.2.1.2', '3.2.1', '3.2', 'SAME', { issuerOfPatientId: 'HOSP-B' }),
    rec('3.3.1.1', '3.3.1', '3.3', 'SAME'), // written before the issuer was kept
  ];
  const patients = entitiesAt('PATIENT', records).map((e) => [e.PatientID, e.IssuerOfPatientID, e.NumberOfPatientRelatedInstances]);
  t.deepEqual(patients, [['SAME', 'HOSP-A', '1'], ['SAME', 'HOSP-B', '2'], ['SAME', undefined, '1']]);
  t.deepEqual(matchIndex('PATIENT', records, { PatientID: 'SAME', IssuerOfPatientID: 'HOSP-B' }).entities.map((e) => e.NumberOfPatientRelatedInstances), ['2']);
  t.deepEqual(matchIndex('PATIENT', records, { PatientID: 'SAME', IssuerOfPatientID: 'HOSP-*' }).unsupported, [], 'the issuer is a key the index matches');
  t.deepEqual(matchIndex('STUDY', records, { IssuerOfPatientID: 'HOSP-A' }).entities.map((e) => e.StudyInstanceUID), ['3.1']);
  t.deepEqual(recordsFor({ list: () => records, indexesPatients: false } as unknown as Spool, 'PATIENT', { PatientID: 'SAME', IssuerOfPatientID: 'HOSP-B' }).map((r) => r.sopInstanceUid), ['3.2.1.1', '3.2.1.2'], 'a C-MOVE of the patient with its issuer');
});
