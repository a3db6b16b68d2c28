// UIDs the router knows by name: transfer syntaxes (PS3.5 section 10 / PS3.6 Annex A), the storage
// SOP classes of PS3.4 Annex B.5, Query/Retrieve (PS3.4 C.6) and Storage Commitment (PS3.4 J.3).
// Keywords are the PS3.6 Annex A keywords. Every UID here was checked against PS3.6 Table A-1
// (as generated into pydicom's UID registry).

export type TransferSyntax = {
  uid: string;
  keyword: string;
  name: string;
  explicitVr: boolean;
  littleEndian: boolean;
  /** Pixel Data is encapsulated (compressed) fragments, PS3.5 A.4. */
  encapsulated: boolean;
  /** The whole data set is deflated, PS3.5 A.5. */
  deflated: boolean;
};

function ts(uid: string, keyword: string, name: string, flags: Partial<TransferSyntax> = {}): TransferSyntax {
  return { uid, keyword, name, explicitVr: true, littleEndian: true, encapsulated: true, deflated: false, ...flags };
}

/** In DEFAULT_TRANSFER_SYNTAXES order, then the HTJ2K syntaxes. */
export const TRANSFER_SYNTAXES: readonly TransferSyntax[] = [
  ts('1.2.840.10008.1.2', 'ImplicitVRLittleEndian', 'Implicit VR Little Endian', { explicitVr: false, encapsulated: false }),
  ts('1.2.840.10008.1.2.1', 'ExplicitVRLittleEndian', 'Explicit VR Little Endian', { encapsulated: false }),
  ts('1.2.840.10008.1.2.1.99', 'DeflatedExplicitVRLittleEndian', 'Deflated Explicit VR Little Endian', {
    encapsulated: false,
    deflated: true,
  }),
  ts('1.2.840.10008.1.2.2', 'ExplicitVRBigEndian', 'Explicit VR Big Endian (Retired)', { littleEndian: false, encapsulated: false }),
  ts('1.2.840.10008.1.2.4.50', 'JPEGBaseline8Bit', 'JPEG Baseline (Process 1)'),
  ts('1.2.840.10008.1.2.4.51', 'JPEGExtended12Bit', 'JPEG Extended (Process 2 and 4)'),
  ts('1.2.840.10008.1.2.4.57', 'JPEGLossless', 'JPEG Lossless, Non-Hierarchical (Process 14)'),
  ts('1.2.840.10008.1.2.4.70', 'JPEGLosslessSV1', 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])'),
  ts('1.2.840.10008.1.2.4.80', 'JPEGLSLossless', 'JPEG-LS Lossless Image Compression'),
  ts('1.2.840.10008.1.2.4.81', 'JPEGLSNearLossless', 'JPEG-LS Lossy (Near-Lossless) Image Compression'),
  ts('1.2.840.10008.1.2.4.90', 'JPEG2000Lossless', 'JPEG 2000 Image Compression (Lossless Only)'),
  ts('1.2.840.10008.1.2.4.91', 'JPEG2000', 'JPEG 2000 Image Compression'),
  ts('1.2.840.10008.1.2.5', 'RLELossless', 'RLE Lossless'),
  ts('1.2.840.10008.1.2.4.201', 'HTJ2KLossless', 'High-Throughput JPEG 2000 Image Compression (Lossless Only)'),
  ts('1.2.840.10008.1.2.4.202', 'HTJ2KLosslessRPCL', 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)'),
  ts('1.2.840.10008.1.2.4.203', 'HTJ2K', 'High-Throughput JPEG 2000 Image Compression'),
];

const TS_BY_UID = new Map(TRANSFER_SYNTAXES.map((t) => [t.uid, t]));

export function transferSyntax(uid: string): TransferSyntax | undefined {
  return TS_BY_UID.get(uid);
}

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1.99';
export const EXPLICIT_VR_BIG_ENDIAN = '1.2.840.10008.1.2.2';

/** How a dataset in this syntax is encoded (encapsulated syntaxes are Explicit VR LE; unknown ones are read as Implicit VR LE, PS3.5 A.1). */
export function datasetEncoding(uid: string): { explicitVr: boolean; littleEndian: boolean } {
  const t = transferSyntax(uid);
  return { explicitVr: t?.explicitVr ?? false, littleEndian: t?.littleEndian ?? true };
}

/** The uncompressed, deflated and classic compressed syntaxes (HTJ2K left out: few peers know it). */
export const DEFAULT_TRANSFER_SYNTAXES: string[] = TRANSFER_SYNTAXES.slice(0, 13).map((t) => t.uid);

export type SopClassKind = 'verification' | 'storage' | 'query' | 'retrieve' | 'commitment';
export type SopClass = { uid: string; keyword: string; name: string; kind: SopClassKind };

const S = 'storage';
function sop(uid: string, keyword: string, name: string, kind: SopClassKind = S): SopClass {
  return { uid, keyword, name, kind };
}
const P = '1.2.840.10008.5.1.4.1.1.'; // PS3.4 B.5 storage SOP class prefix

export const SOP_CLASSES: readonly SopClass[] = [
  sop('1.2.840.10008.1.1', 'Verification', 'Verification', 'verification'),
  sop(P + '1', 'ComputedRadiographyImageStorage', 'Computed Radiography Image Storage'),
  sop(P + '1.1', 'DigitalXRayImageStorageForPresentation', 'Digital X-Ray Image Storage - For Presentation'),
  sop(P + '1.1.1', 'DigitalXRayImageStorageForProcessing', 'Digital X-Ray Image Storage - For Processing'),
  sop(P + '1.2', 'DigitalMammographyXRayImageStorageForPresentation', 'Digital Mammography X-Ray Image Storage - For Presentation'),
  sop(P + '1.2.1', 'DigitalMammographyXRayImageStorageForProcessing', 'Digital Mammography X-Ray Image Storage - For Processing'),
  sop(P + '1.3', 'DigitalIntraOralXRayImageStorageForPresentation', 'Digital Intra-Oral X-Ray Image Storage - For Presentation'),
  sop(P + '1.3.1', 'DigitalIntraOralXRayImageStorageForProcessing', 'Digital Intra-Oral X-Ray Image Storage - For Processing'),
  sop(P + '2', 'CTImageStorage', 'CT Image Storage'),
  sop(P + '2.1', 'EnhancedCTImageStorage', 'Enhanced CT Image Storage'),
  sop(P + '3', 'UltrasoundMultiFrameImageStorageRetired', 'Ultrasound Multi-frame Image Storage (Retired)'),
  sop(P + '3.1', 'UltrasoundMultiFrameImageStorage', 'Ultrasound Multi-frame Image Storage'),
  sop(P + '4', 'MRImageStorage', 'MR Image Storage'),
  sop(P + '4.1', 'EnhancedMRImageStorage', 'Enhanced MR Image Storage'),
  sop(P + '4.2', 'MRSpectroscopyStorage', 'MR Spectroscopy Storage'),
  sop(P + '6', 'UltrasoundImageStorageRetired', 'Ultrasound Image Storage (Retired)'),
  sop(P + '6.1', 'UltrasoundImageStorage', 'Ultrasound Image Storage'),
  sop(P + '7', 'SecondaryCaptureImageStorage', 'Secondary Capture Image Storage'),
  sop(P + '7.1', 'MultiFrameSingleBitSecondaryCaptureImageStorage', 'Multi-frame Single Bit Secondary Capture Image Storage'),
  sop(P + '7.2', 'MultiFrameGrayscaleByteSecondaryCaptureImageStorage', 'Multi-frame Grayscale Byte Secondary Capture Image Storage'),
  sop(P + '7.3', 'MultiFrameGrayscaleWordSecondaryCaptureImageStorage', 'Multi-frame Grayscale Word Secondary Capture Image Storage'),
  sop(P + '7.4', 'MultiFrameTrueColorSecondaryCaptureImageStorage', 'Multi-frame True Color Secondary Capture Image Storage'),
  sop(P + '9.1.1', 'TwelveLeadECGWaveformStorage', '12-lead ECG Waveform Storage'),
  sop(P + '9.1.2', 'GeneralECGWaveformStorage', 'General ECG Waveform Storage'),
  sop(P + '11.1', 'GrayscaleSoftcopyPresentationStateStorage', 'Grayscale Softcopy Presentation State Storage'),
  sop(P + '12.1', 'XRayAngiographicImageStorage', 'X-Ray Angiographic Image Storage'),
  sop(P + '12.2', 'XRayRadiofluoroscopicImageStorage', 'X-Ray Radiofluoroscopic Image Storage'),
  sop(P + '12.3', 'XRayAngiographicBiPlaneImageStorage', 'X-Ray Angiographic Bi-Plane Image Storage (Retired)'),
  sop(P + '20', 'NuclearMedicineImageStorage', 'Nuclear Medicine Image Storage'),
  sop(P + '66', 'RawDataStorage', 'Raw Data Storage'),
  sop(P + '66.4', 'SegmentationStorage', 'Segmentation Storage'),
  sop(P + '77.1.1', 'VLEndoscopicImageStorage', 'VL Endoscopic Image Storage'),
  sop(P + '77.1.2', 'VLMicroscopicImageStorage', 'VL Microscopic Image Storage'),
  sop(P + '77.1.3', 'VLSlideCoordinatesMicroscopicImageStorage', 'VL Slide-Coordinates Microscopic Image Storage'),
  sop(P + '77.1.4', 'VLPhotographicImageStorage', 'VL Photographic Image Storage'),
  sop(P + '88.11', 'BasicTextSRStorage', 'Basic Text SR Storage'),
  sop(P + '88.22', 'EnhancedSRStorage', 'Enhanced SR Storage'),
  sop(P + '88.33', 'ComprehensiveSRStorage', 'Comprehensive SR Storage'),
  sop(P + '88.59', 'KeyObjectSelectionDocumentStorage', 'Key Object Selection Document Storage'),
  sop(P + '104.1', 'EncapsulatedPDFStorage', 'Encapsulated PDF Storage'),
  sop(P + '128', 'PositronEmissionTomographyImageStorage', 'Positron Emission Tomography Image Storage'),
  sop(P + '481.1', 'RTImageStorage', 'RT Image Storage'),
  sop(P + '481.2', 'RTDoseStorage', 'RT Dose Storage'),
  sop(P + '481.3', 'RTStructureSetStorage', 'RT Structure Set Storage'),
  sop(P + '481.4', 'RTBeamsTreatmentRecordStorage', 'RT Beams Treatment Record Storage'),
  sop(P + '481.5', 'RTPlanStorage', 'RT Plan Storage'),
  sop(P + '481.6', 'RTBrachyTreatmentRecordStorage', 'RT Brachy Treatment Record Storage'),
  sop(P + '481.7', 'RTTreatmentSummaryRecordStorage', 'RT Treatment Summary Record Storage'),
  sop('1.2.840.10008.5.1.4.1.2.1.1', 'PatientRootQueryRetrieveInformationModelFind', 'Patient Root Query/Retrieve Information Model - FIND', 'query'),
  sop('1.2.840.10008.5.1.4.1.2.1.2', 'PatientRootQueryRetrieveInformationModelMove', 'Patient Root Query/Retrieve Information Model - MOVE', 'retrieve'),
  sop('1.2.840.10008.5.1.4.1.2.1.3', 'PatientRootQueryRetrieveInformationModelGet', 'Patient Root Query/Retrieve Information Model - GET', 'retrieve'),
  sop('1.2.840.10008.5.1.4.1.2.2.1', 'StudyRootQueryRetrieveInformationModelFind', 'Study Root Query/Retrieve Information Model - FIND', 'query'),
  sop('1.2.840.10008.5.1.4.1.2.2.2', 'StudyRootQueryRetrieveInformationModelMove', 'Study Root Query/Retrieve Information Model - MOVE', 'retrieve'),
  sop('1.2.840.10008.5.1.4.1.2.2.3', 'StudyRootQueryRetrieveInformationModelGet', 'Study Root Query/Retrieve Information Model - GET', 'retrieve'),
  sop('1.2.840.10008.1.20.1', 'StorageCommitmentPushModel', 'Storage Commitment Push Model', 'commitment'),
];

/** Keyword -> UID, e.g. SopClassUid.CTImageStorage. */
export const SopClassUid: Readonly<Record<string, string>> = Object.fromEntries(SOP_CLASSES.map((s) => [s.keyword, s.uid]));
/** Keyword -> UID, e.g. TransferSyntaxUid.JPEGLosslessSV1. */
export const TransferSyntaxUid: Readonly<Record<string, string>> = Object.fromEntries(TRANSFER_SYNTAXES.map((t) => [t.keyword, t.uid]));

export const VERIFICATION_SOP_CLASS = '1.2.840.10008.1.1';
export const STORAGE_COMMITMENT_PUSH_MODEL_SOP_CLASS = '1.2.840.10008.1.20.1';
/** PS3.4 J.3.5: the well-known SOP instance of Storage Commitment Push Model. */
export const STORAGE_COMMITMENT_PUSH_MODEL_SOP_INSTANCE = '1.2.840.10008.1.20.1.1';
export const PATIENT_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.1.1';
export const PATIENT_ROOT_MOVE = '1.2.840.10008.5.1.4.1.2.1.2';
export const PATIENT_ROOT_GET = '1.2.840.10008.5.1.4.1.2.1.3';
export const STUDY_ROOT_FIND = '1.2.840.10008.5.1.4.1.2.2.1';
export const STUDY_ROOT_MOVE = '1.2.840.10008.5.1.4.1.2.2.2';
export const STUDY_ROOT_GET = '1.2.840.10008.5.1.4.1.2.2.3';

export const DEFAULT_STORAGE_SOP_CLASSES: string[] = SOP_CLASSES.filter((s) => s.kind === 'storage').map((s) => s.uid);

const SOP_BY_UID = new Map(SOP_CLASSES.map((s) => [s.uid, s]));
const normalize = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
const SOP_BY_NAME = new Map<string, SopClass>();
for (const s of SOP_CLASSES) {
  SOP_BY_NAME.set(normalize(s.keyword), s);
  SOP_BY_NAME.set(normalize(s.name), s);
}

export function sopClass(uid: string): SopClass | undefined {
  return SOP_BY_UID.get(uid);
}

/** The human name ('CT Image Storage'), or undefined for a UID not in the table. */
export function sopClassName(uid: string): string | undefined {
  return SOP_BY_UID.get(uid)?.name;
}

/** The UID for a keyword ('CTImageStorage') or name ('CT Image Storage'); case, spaces and
 *  punctuation are ignored. */
export function sopClassByName(name: string): string | undefined {
  return SOP_BY_NAME.get(normalize(name))?.uid;
}

export function isStorageSopClass(uid: string): boolean {
  return SOP_BY_UID.get(uid)?.kind === 'storage';
}

/** A UUID-derived UID (PS3.5 B.2, root 2.25), generated once: no organisation root needed. */
export const IMPLEMENTATION_CLASS_UID = '2.25.190200012048625476609292592211809890067';
/** PS3.7 D.3.3.2.3: at most 16 characters. */
export const IMPLEMENTATION_VERSION_NAME = 'DICOMROUTER_01';

/** PS3.5 9.1: at most 64 characters; dot-separated components of digits, no leading zero
 *  except a lone '0'. */
export function isValidUid(s: unknown): boolean {
  return typeof s === 'string' && s.length > 0 && s.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(s);
}
