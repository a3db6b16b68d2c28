// What every byte-level reader and writer of an encoded dataset needs of PS3.5: the VRs, which of
// them have a 32-bit length in Explicit VR, the item and delimitation tags of sequences and
// encapsulated pixel data, and the undefined length.

/** PS3.5 Table 7.1-1: VRs with a reserved field and a 32-bit length in Explicit VR. */
export const LONG_VRS: ReadonlySet<string> = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
/** Every VR of PS3.5 6.2. */
export const ALL_VRS: ReadonlySet<string> = new Set([
  ...LONG_VRS,
  ...['AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FL', 'FD', 'IS', 'LO', 'LT', 'PN', 'SH', 'SL', 'SS', 'ST', 'TM', 'UI', 'UL', 'US'],
]);

/** A value length that says "until the delimiter" (PS3.5 7.1.1). */
export const UNDEFINED_LENGTH = 0xffffffff;
/** Item, Item Delimitation and Sequence Delimitation (PS3.5 7.5), as (group << 16 | element). */
export const ITEM = 0xfffee000;
export const ITEM_DELIMITER = 0xfffee00d;
export const SEQUENCE_DELIMITER = 0xfffee0dd;

/** Pixel Data, and its float and double float forms (PS3.3 C.7.6.3). */
export const PIXEL_DATA = 0x7fe00010;
export const FLOAT_PIXEL_DATA = 0x7fe00008;
export const DOUBLE_PIXEL_DATA = 0x7fe00009;
