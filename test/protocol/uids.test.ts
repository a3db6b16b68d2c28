import test from 'ava';
import {
  DEFAULT_STORAGE_SOP_CLASSES,
  DEFAULT_TRANSFER_SYNTAXES,
  IMPLEMENTATION_CLASS_UID,
  IMPLEMENTATION_VERSION_NAME,
  SOP_CLASSES,
  SopClassUid,
  TRANSFER_SYNTAXES,
  TransferSyntaxUid,
  VERIFICATION_SOP_CLASS,
  isStorageSopClass,
  isValidUid,
  sopClass,
  sopClassByName,
  sopClassName,
  transferSyntax,
} from '../../protocol/uids.ts';

test('every UID in the tables is valid and unique', (t) => {
  const all = [...TRANSFER_SYNTAXES.map((x) => x.uid), ...SOP_CLASSES.map((x) => x.uid), IMPLEMENTATION_CLASS_UID];
  for (const uid of all) t.true(isValidUid(uid), uid);
  t.is(new Set(all).size, all.length);
  t.is(new Set(SOP_CLASSES.map((s) => s.keyword)).size, SOP_CLASSES.length);
});

test('DEFAULT_TRANSFER_SYNTAXES are the listed syntaxes in order (PS3.6 Table A-1)', (t) => {
  t.deepEqual(DEFAULT_TRANSFER_SYNTAXES, [
    '1.2.840.10008.1.2',
    '1.2.840.10008.1.2.1',
    '1.2.840.10008.1.2.1.99',
    '1.2.840.10008.1.2.2',
    '1.2.840.10008.1.2.4.50',
    '1.2.840.10008.1.2.4.51',
    '1.2.840.10008.1.2.4.57',
    '1.2.840.10008.1.2.4.70',
    '1.2.840.10008.1.2.4.80',
    '1.2.840.10008.1.2.4.81',
    '1.2.840.10008.1.2.4.90',
    '1.2.840.10008.1.2.4.91',
    '1.2.840.10008.1.2.5',
  ]);
  t.is(TransferSyntaxUid.HTJ2KLossless, '1.2.840.10008.1.2.4.201');
  t.is(TransferSyntaxUid.HTJ2K, '1.2.840.10008.1.2.4.203');
});

test('transfer syntax properties', (t) => {
  t.like(transferSyntax('1.2.840.10008.1.2'), { explicitVr: false, littleEndian: true, encapsulated: false, deflated: false });
  t.like(transferSyntax('1.2.840.10008.1.2.1'), { explicitVr: true, littleEndian: true, encapsulated: false, deflated: false });
  t.like(transferSyntax('1.2.840.10008.1.2.1.99'), { explicitVr: true, littleEndian: true, encapsulated: false, deflated: true });
  t.like(transferSyntax('1.2.840.10008.1.2.2'), { explicitVr: true, littleEndian: false, encapsulated: false, deflated: false });
  for (const uid of DEFAULT_TRANSFER_SYNTAXES.slice(4)) {
    t.like(transferSyntax(uid), { explicitVr: true, littleEndian: true, encapsulated: true, deflated: false }, uid);
  }
  t.is(transferSyntax('1.2.840.10008.1.2.4.70')?.keyword, 'JPEGLosslessSV1');
  t.is(transferSyntax('1.2.3'), undefined);
});

// Written out by hand from PS3.6 Table A-1 / PS3.4 B.5, independently of the table under test.
const EXPECTED: Record<string, string> = {
  Verification: '1.2.840.10008.1.1',
  ComputedRadiographyImageStorage: '1.2.840.10008.5.1.4.1.1.1',
  DigitalXRayImageStorageForPresentation: '1.2.840.10008.5.1.4.1.1.1.1',
  DigitalXRayImageStorageForProcessing: '1.2.840.10008.5.1.4.1.1.1.1.1',
  DigitalMammographyXRayImageStorageForPresentation: '1.2.840.10008.5.1.4.1.1.1.2',
  DigitalMammographyXRayImageStorageForProcessing: '1.2.840.10008.5.1.4.1.1.1.2.1',
  DigitalIntraOralXRayImageStorageForPresentation: '1.2.840.10008.5.1.4.1.1.1.3',
  DigitalIntraOralXRayImageStorageForProcessing: '1.2.840.10008.5.1.4.1.1.1.3.1',
  CTImageStorage: '1.2.840.10008.5.1.4.1.1.2',
  EnhancedCTImageStorage: '1.2.840.10008.5.1.4.1.1.2.1',
  UltrasoundMultiFrameImageStorageRetired: '1.2.840.10008.5.1.4.1.1.3',
  UltrasoundMultiFrameImageStorage: '1.2.840.10008.5.1.4.1.1.3.1',
  MRImageStorage: '1.2.840.10008.5.1.4.1.1.4',
  EnhancedMRImageStorage: '1.2.840.10008.5.1.4.1.1.4.1',
  MRSpectroscopyStorage: '1.2.840.10008.5.1.4.1.1.4.2',
  UltrasoundImageStorageRetired: '1.2.840.10008.5.1.4.1.1.6',
  UltrasoundImageStorage: '1.2.840.10008.5.1.4.1.1.6.1',
  SecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7',
  MultiFrameSingleBitSecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7.1',
  MultiFrameGrayscaleByteSecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7.2',
  MultiFrameGrayscaleWordSecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7.3',
  MultiFrameTrueColorSecondaryCaptureImageStorage: '1.2.840.10008.5.1.4.1.1.7.4',
  TwelveLeadECGWaveformStorage: '1.2.840.10008.5.1.4.1.1.9.1.1',
  GeneralECGWaveformStorage: '1.2.840.10008.5.1.4.1.1.9.1.2',
  GrayscaleSoftcopyPresentationStateStorage: '1.2.840.10008.5.1.4.1.1.11.1',
  XRayAngiographicImageStorage: '1.2.840.10008.5.1.4.1.1.12.1',
  XRayRadiofluoroscopicImageStorage: '1.2.840.10008.5.1.4.1.1.12.2',
  XRayAngiographicBiPlaneImageStorage: '1.2.840.10008.5.1.4.1.1.12.3',
  NuclearMedicineImageStorage: '1.2.840.10008.5.1.4.1.1.20',
  RawDataStorage: '1.2.840.10008.5.1.4.1.1.66',
  SegmentationStorage: '1.2.840.10008.5.1.4.1.1.66.4',
  VLEndoscopicImageStorage: '1.2.840.10008.5.1.4.1.1.77.1.1',
  VLMicroscopicImageStorage: '1.2.840.10008.5.1.4.1.1.77.1.2',
  VLSlideCoordinatesMicroscopicImageStorage: '1.2.840.10008.5.1.4.1.1.77.1.3',
  VLPhotographicImageStorage: '1.2.840.10008.5.1.4.1.1.77.1.4',
  BasicTextSRStorage: '1.2.840.10008.5.1.4.1.1.88.11',
  EnhancedSRStorage: '1.2.840.10008.5.1.4.1.1.88.22',
  ComprehensiveSRStorage: '1.2.840.10008.5.1.4.1.1.88.33',
  KeyObjectSelectionDocumentStorage: '1.2.840.10008.5.1.4.1.1.88.59',
  EncapsulatedPDFStorage: '1.2.840.10008.5.1.4.1.1.104.1',
  PositronEmissionTomographyImageStorage: '1.2.840.10008.5.1.4.1.1.128',
  RTImageStorage: '1.2.840.10008.5.1.4.1.1.481.1',
  RTDoseStorage: '1.2.840.10008.5.1.4.1.1.481.2',
  RTStructureSetStorage: '1.2.840.10008.5.1.4.1.1.481.3',
  RTBeamsTreatmentRecordStorage: '1.2.840.10008.5.1.4.1.1.481.4',
  RTPlanStorage: '1.2.840.10008.5.1.4.1.1.481.5',
  RTBrachyTreatmentRecordStorage: '1.2.840.10008.5.1.4.1.1.481.6',
  RTTreatmentSummaryRecordStorage: '1.2.840.10008.5.1.4.1.1.481.7',
  PatientRootQueryRetrieveInformationModelFind: '1.2.840.10008.5.1.4.1.2.1.1',
  PatientRootQueryRetrieveInformationModelMove: '1.2.840.10008.5.1.4.1.2.1.2',
  PatientRootQueryRetrieveInformationModelGet: '1.2.840.10008.5.1.4.1.2.1.3',
  StudyRootQueryRetrieveInformationModelFind: '1.2.840.10008.5.1.4.1.2.2.1',
  StudyRootQueryRetrieveInformationModelMove: '1.2.840.10008.5.1.4.1.2.2.2',
  StudyRootQueryRetrieveInformationModelGet: '1.2.840.10008.5.1.4.1.2.2.3',
  StorageCommitmentPushModel: '1.2.840.10008.1.20.1',
};

test('SOP class UIDs match the standard', (t) => {
  t.deepEqual({ ...SopClassUid }, EXPECTED);
  t.is(VERIFICATION_SOP_CLASS, '1.2.840.10008.1.1');
});

test('storage SOP class list excludes verification, Q/R and commitment', (t) => {
  t.is(DEFAULT_STORAGE_SOP_CLASSES.length, SOP_CLASSES.length - 8);
  t.true(DEFAULT_STORAGE_SOP_CLASSES.includes(EXPECTED.CTImageStorage));
  t.false(DEFAULT_STORAGE_SOP_CLASSES.includes(VERIFICATION_SOP_CLASS));
  t.false(DEFAULT_STORAGE_SOP_CLASSES.includes(EXPECTED.StudyRootQueryRetrieveInformationModelMove));
  t.false(DEFAULT_STORAGE_SOP_CLASSES.includes(EXPECTED.StorageCommitmentPushModel));
  t.true(isStorageSopClass(EXPECTED.UltrasoundImageStorageRetired));
  t.false(isStorageSopClass(VERIFICATION_SOP_CLASS));
  t.false(isStorageSopClass('1.2.3'));
});

test('lookups by UID, keyword and name', (t) => {
  t.is(sopClassName('1.2.840.10008.5.1.4.1.1.2'), 'CT Image Storage');
  t.is(sopClassName('1.2.3.4'), undefined);
  t.is(sopClassByName('CTImageStorage'), '1.2.840.10008.5.1.4.1.1.2');
  t.is(sopClassByName('CT Image Storage'), '1.2.840.10008.5.1.4.1.1.2');
  t.is(sopClassByName('ctimagestorage'), '1.2.840.10008.5.1.4.1.1.2');
  t.is(sopClassByName('Digital X-Ray Image Storage - For Processing'), '1.2.840.10008.5.1.4.1.1.1.1.1');
  t.is(sopClassByName('UltrasoundImageStorageRetired'), '1.2.840.10008.5.1.4.1.1.6');
  t.is(sopClassByName('Ultrasound Image Storage'), '1.2.840.10008.5.1.4.1.1.6.1');
  t.is(sopClassByName('12-lead ECG Waveform Storage'), '1.2.840.10008.5.1.4.1.1.9.1.1');
  t.is(sopClassByName('NoSuchStorage'), undefined);
  t.is(sopClass('1.2.840.10008.5.1.4.1.2.2.1')?.kind, 'query');
  // Names and keywords must not collide once normalised.
  for (const s of SOP_CLASSES) {
    t.is(sopClassByName(s.keyword), s.uid, s.keyword);
    t.is(sopClassByName(s.name), s.uid, s.name);
  }
});

test('implementation identity', (t) => {
  t.true(IMPLEMENTATION_CLASS_UID.startsWith('2.25.'));
  t.true(isValidUid(IMPLEMENTATION_CLASS_UID));
  // PS3.5 B.2: the UUID as an unsigned integer, at most 2^128 - 1.
  t.true(BigInt(IMPLEMENTATION_CLASS_UID.slice(5)) < 2n ** 128n);
  t.true(IMPLEMENTATION_VERSION_NAME.length >= 1 && IMPLEMENTATION_VERSION_NAME.length <= 16);
  t.regex(IMPLEMENTATION_VERSION_NAME, /^[\x21-\x7e]+$/);
});

test('isValidUid', (t) => {
  for (const ok of ['0', '1.2', '1.2.840.10008.1.2', '2.25.0', '1.0.3', '1.' + '2'.repeat(62)]) t.true(isValidUid(ok), ok);
  for (const bad of ['', '.', '1.', '.1', '1..2', '1.02', '01.2', '1.2a', '1.2 ', ' 1.2', '1.-2', '1.' + '2'.repeat(63), 12, null]) {
    t.false(isValidUid(bad), String(bad));
  }
});
