// Q/R identifiers: keys by keyword, encoded in the context's syntax, read back by the header parser.
import test from 'ava';
import { encodeIdentifier, findIdentifier, IdentifierError, keywordTag } from '../../protocol/dataset-encode.ts';
import { parseHeader } from '../../protocol/dataset-header.ts';

const ELE = '1.2.840.10008.1.2.1';
const ILE = '1.2.840.10008.1.2';

test('keys round-trip through both little-endian syntaxes, tags ascending, empty values kept as return keys', (t) => {
  for (const ts of [ELE, ILE]) {
    const bytes = findIdentifier('STUDY', { StudyInstanceUID: '', PatientID: 'P1', StudyDate: '20200101-', ModalitiesInStudy: 'CT\\MR' }, ts);
    t.is(bytes.length % 2, 0);
    const ds = parseHeader(bytes, ts).dataset;
    t.like(ds, { QueryRetrieveLevel: 'STUDY', PatientID: 'P1' });
    t.deepEqual(ds.ModalitiesInStudy, ['CT', 'MR']);
    t.true('StudyInstanceUID' in ds);
    // (0008,0020) StudyDate comes before (0008,0052) QueryRetrieveLevel and (0010,0020) PatientID.
    const first = new DataView(bytes.buffer, bytes.byteOffset).getUint16(2, true);
    t.is(first, 0x0020);
  }
});

test('bad keys are refused with the keyword', (t) => {
  t.throws(() => encodeIdentifier({ PatientIDD: 'x' }, ELE), { instanceOf: IdentifierError, message: /unknown attribute keyword 'PatientIDD'/ });
  t.throws(() => encodeIdentifier({ ReferencedStudySequence: '' }, ELE), { instanceOf: IdentifierError, message: /VR SQ/ });
  t.throws(() => encodeIdentifier({ PatientName: 'Zürich' }, ELE), { instanceOf: IdentifierError, message: /PatientName/ });
  t.deepEqual(keywordTag('PatientID'), { tag: 0x00100020, vr: 'LO' });
});
