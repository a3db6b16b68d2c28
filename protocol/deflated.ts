// Deflated Explicit VR Little Endian (PS3.5 A.5): the dataset after the file meta information is an
// Explicit VR LE dataset compressed with raw Deflate (RFC 1951, no zlib header or checksum). What the
// router can produce from what, once a stream stage inflates or deflates it, is decided here; the
// stages themselves are actors/forward/deflate-stream.ts.
import { canConvert } from './ts-convert.ts';
import { EXPLICIT_VR_LITTLE_ENDIAN, transferSyntax } from './uids.ts';

export function isDeflated(uid: string): boolean {
  return transferSyntax(uid)?.deflated ?? false;
}

/** The syntax the dataset bytes are in once inflated: Explicit VR LE for Deflated, else the syntax itself. */
export function inflatedSyntax(uid: string): string {
  return isDeflated(uid) ? EXPLICIT_VR_LITTLE_ENDIAN : uid;
}

/**
 * True when a dataset stored in `fromUid` can be streamed out in `toUid`: among Implicit VR LE,
 * Explicit VR LE, Explicit VR BE and Deflated Explicit VR LE, either way (inflate, convert, deflate).
 */
export function canTranscode(fromUid: string, toUid: string): boolean {
  return canConvert(inflatedSyntax(fromUid), inflatedSyntax(toUid));
}
