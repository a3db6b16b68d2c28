// Query/Retrieve identifiers (PS3.4 C.4.1.1.3, C.4.2.1.4): a flat dataset of keys by keyword,
// each with a matching value or empty (universal matching / a return key), encoded in the
// presentation context's transfer syntax. Pure code; sequences are not needed here and refused.
import { data } from 'dcmjs';
import { datasetEncoding, encodeElement, encodeValue } from './dataset-rewrite.ts';

export type QueryLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
export const QUERY_LEVELS: readonly QueryLevel[] = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'];

const meta = data.DicomMetaDictionary;
const VR_ALIASES: Record<string, string> = { ox: 'OB', xs: 'US', up: 'UL', lt: 'OW' };

export class IdentifierError extends Error {}

/** Tag (as a number) and VR of a keyword from the dcmjs dictionary. */
export function keywordTag(keyword: string): { tag: number; vr: string } {
  const entry = Object.hasOwn(meta.nameMap, keyword) ? meta.nameMap[keyword] : undefined;
  if (!entry) throw new IdentifierError(`unknown attribute keyword '${keyword}'`);
  const vr = VR_ALIASES[entry.vr] ?? entry.vr;
  if (vr === 'SQ' || vr === 'na') throw new IdentifierError(`${keyword} (VR ${vr}) cannot be a key here`);
  return { tag: Number.parseInt(meta.unpunctuateTag(entry.tag), 16), vr };
}

/**
 * Encode `keys` (keyword → value; '' asks for the attribute back) as an identifier in
 * `transferSyntaxUid`, tags ascending. SpecificCharacterSet, when given as a key, says how the
 * other values are written (ASCII otherwise).
 */
export function encodeIdentifier(keys: Record<string, string>, transferSyntaxUid: string): Uint8Array {
  const enc = datasetEncoding(transferSyntaxUid);
  const charset = keys.SpecificCharacterSet ?? '';
  const elements = Object.entries(keys)
    .map(([keyword, value]) => ({ keyword, value, ...keywordTag(keyword) }))
    .sort((a, b) => a.tag - b.tag);
  const parts = elements.map(({ tag, vr, value, keyword }) => {
    try {
      return encodeElement(tag, vr, encodeValue(vr, value === '' ? undefined : value, enc, charset, keyword), enc);
    } catch (err) {
      throw new IdentifierError(`${keyword}: ${(err as Error).message}`);
    }
  });
  return Buffer.concat(parts);
}

/** The Study Root / Patient Root C-FIND identifier the level needs: QueryRetrieveLevel plus the keys. */
export function findIdentifier(level: QueryLevel, keys: Record<string, string>, transferSyntaxUid: string): Uint8Array {
  return encodeIdentifier({ ...keys, QueryRetrieveLevel: level }, transferSyntaxUid);
}
