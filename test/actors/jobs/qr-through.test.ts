// Which instances stored meanwhile a retrieve-through takes as its own (issue 16): those the C-MOVE
// identifier names by its unique keys; at PATIENT level with an issuer, that issuer's patient only.
import test from 'ava';
import { belongsTo } from '../../../actors/jobs/qr-scp-through.ts';

const i = (over: Partial<Parameters<typeof belongsTo>[2]> = {}) => ({ sopInstanceUid: '1.1.1.1', studyInstanceUid: '1.1', seriesInstanceUid: '1.1.1', patientId: 'P1', ...over });

test('by the unique keys of the level and above', (t) => {
  t.true(belongsTo('STUDY', { StudyInstanceUID: '1.1' }, i()));
  t.false(belongsTo('STUDY', { StudyInstanceUID: '1.2' }, i()));
  t.true(belongsTo('STUDY', { StudyInstanceUID: '1.2\\1.1' }, i()), 'a UID list');
  t.true(belongsTo('SERIES', { StudyInstanceUID: '1.1', SeriesInstanceUID: '1.1.1' }, i()));
  t.false(belongsTo('IMAGE', { StudyInstanceUID: '1.1', SeriesInstanceUID: '1.1.1', SOPInstanceUID: '1.1.1.2' }, i()));
});

test('a patient named with its issuer: the same Patient ID from another issuer (or none) is someone else', (t) => {
  t.true(belongsTo('PATIENT', { PatientID: 'P1', IssuerOfPatientID: 'HOSP-A' }, i({ issuerOfPatientId: 'HOSP-A' })));
  t.false(belongsTo('PATIENT', { PatientID: 'P1', IssuerOfPatientID: 'HOSP-A' }, i({ issuerOfPatientId: 'HOSP-B' })));
  t.false(belongsTo('PATIENT', { PatientID: 'P1', IssuerOfPatientID: 'HOSP-A' }, i()));
  t.true(belongsTo('PATIENT', { PatientID: 'P1' }, i({ issuerOfPatientId: 'HOSP-B' })), 'no issuer asked: the ID alone');
});
