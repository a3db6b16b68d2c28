// A deliberately small declaration of the parts of dcmjs 0.51 this project uses
// (checked against node_modules/dcmjs/build/dcmjs.es.js). Extend it when new parts are used.
declare module 'dcmjs' {
  /** One element of a denaturalized dataset, keyed by 8-hex-digit tag ("00100020"). */
  export interface DicomElement {
    vr: string;
    Value?: unknown[];
    /** Undecoded values as read, used by the writer when Value was left unchanged. */
    _rawValue?: unknown;
    InlineBinary?: string;
    BulkDataURI?: string;
  }

  export type DenaturalizedDataset = Record<string, DicomElement>;

  /**
   * Naturalized: keyword → value, or the 8-hex-digit tag for elements not in the dictionary
   * (private ones). Single values are unwrapped; sequences become arrays of datasets; PN values
   * are { Alphabetic?, Ideographic?, Phonetic? } objects; binary values are ArrayBuffers.
   * `_vrMap` records VRs that differ from the dictionary.
   */
  export type NaturalizedDataset = Record<string, unknown> & { _vrMap?: Record<string, string> };

  export interface DictionaryEntry {
    tag: string; // "(0010,0020)"
    vr: string;
    vm: string;
    name: string; // keyword, e.g. "PatientID"
    version: string;
  }

  export interface ReadOptions {
    /** Stop before this tag ("7FE00010", upper-case hex) at the top level. */
    untilTag?: string | null;
    /** With untilTag: also read the value of that tag. */
    includeUntilTagValue?: boolean;
    /** Warn instead of throwing on an unsupported or multi-valued Specific Character Set, and return the
     *  elements read so far instead of throwing on any later error. */
    ignoreErrors?: boolean;
    /** Let values reference the input buffer instead of copying. */
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  export interface WriteOptions {
    allowInvalidVRLength?: boolean;
    fragmentMultiframe?: boolean;
  }

  // Only `data`, `log` and the default export exist at runtime; everything else here is a type.
  export interface DicomDict {
    meta: DenaturalizedDataset;
    dict: DenaturalizedDataset;
    upsertTag(tag: string, vr: string, values: unknown[]): void;
    /** Part-10 bytes: preamble, DICM, meta (Explicit VR LE) and the dataset in the meta's transfer syntax. */
    write(options?: WriteOptions): ArrayBuffer;
  }

  export interface DicomDictConstructor {
    new (meta: DenaturalizedDataset): DicomDict;
  }

  export interface DicomMessageStatic {
    /** Parses a Part-10 file (preamble + "DICM" required). Throws plain Errors on malformed input. */
    readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
    isEncapsulated(transferSyntaxUid: string): boolean;
    /**
     * Reads ONE element (tag, VR, length, value) at the stream's offset, as readFile does for each
     * element: `values` is the element's Value array (strings split at '\\' and trimmed per VR,
     * numbers for binary and numeric-string VRs). The syntax's UID decides implicit/explicit VR and
     * byte order (only the two LE UIDs are little endian). Leading underscore: dcmjs's own, unlisted.
     */
    _readTag(stream: ReadBufferStream, syntax: string): { tag: unknown; vr: { type: string }; values: unknown; rawValues: unknown };
  }

  /** A window on an ArrayBuffer that dcmjs reads elements from. */
  export interface ReadBufferStream {
    /** Where the next read starts; may be moved to re-read or skip. */
    offset: number;
  }

  export interface ReadBufferStreamConstructor {
    new (buffer: ArrayBuffer, littleEndian: boolean, options?: { start?: number; stop?: number; noCopy?: boolean }): ReadBufferStream;
  }

  export interface DicomMetaDictionaryStatic {
    naturalizeDataset(dataset: DenaturalizedDataset): NaturalizedDataset;
    denaturalizeDataset(dataset: NaturalizedDataset, nameMap?: Record<string, DictionaryEntry>): DenaturalizedDataset;
    /** A random UID under 2.25. */
    uid(): string;
    /** "(0010,0020)" → "00100020"; returns its input if already unpunctuated. */
    unpunctuateTag(tag: string): string;
    /** "00100020" → "(0010,0020)". */
    punctuateTag(tag: string): string;
    /** Keyed by punctuated tag, "(0010,0020)". */
    dictionary: Record<string, DictionaryEntry>;
    /** Keyed by keyword, "PatientID". */
    nameMap: Record<string, DictionaryEntry>;
  }

  export const data: {
    DicomDict: DicomDictConstructor;
    ReadBufferStream: ReadBufferStreamConstructor;
    DicomMessage: DicomMessageStatic;
    DicomMetaDictionary: DicomMetaDictionaryStatic;
  };

  export const log: {
    setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'): void;
    getLevel(): number;
    /** loglevel's named loggers (e.g. 'validation.dcmjs'): they keep their own level. */
    getLogger(name: string): { setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'): void };
  };

  const dcmjs: { data: typeof data; log: typeof log };
  export default dcmjs;
  // Turns off implicit export of non-exported declarations (the `dcmjs` const is only the default).
  export {};
}
