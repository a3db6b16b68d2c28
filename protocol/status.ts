// DIMSE status codes: the general ones of PS3.7 Annex C and the service-class specific ones of
// PS3.4 (Storage B.2.3, Query/Retrieve C.4.1.1.4, C.4.2.1.5, C.4.3.1.4). Several codes mean
// different things in different services (A900, B000, Cxxx), hence the optional service argument.

export const Status = {
  SUCCESS: 0x0000,

  // PS3.7 Annex C general statuses.
  OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: 0x0001, // warning
  NO_SUCH_ATTRIBUTE: 0x0105,
  INVALID_ATTRIBUTE_VALUE: 0x0106,
  ATTRIBUTE_LIST_ERROR: 0x0107, // warning
  PROCESSING_FAILURE: 0x0110,
  DUPLICATE_SOP_INSTANCE: 0x0111,
  NO_SUCH_SOP_INSTANCE: 0x0112,
  NO_SUCH_EVENT_TYPE: 0x0113,
  NO_SUCH_ARGUMENT: 0x0114,
  INVALID_ARGUMENT_VALUE: 0x0115,
  ATTRIBUTE_VALUE_OUT_OF_RANGE: 0x0116, // warning
  INVALID_OBJECT_INSTANCE: 0x0117,
  NO_SUCH_SOP_CLASS: 0x0118,
  CLASS_INSTANCE_CONFLICT: 0x0119,
  MISSING_ATTRIBUTE: 0x0120,
  MISSING_ATTRIBUTE_VALUE: 0x0121,
  SOP_CLASS_NOT_SUPPORTED: 0x0122,
  NO_SUCH_ACTION: 0x0123,
  NOT_AUTHORIZED: 0x0124,
  DUPLICATE_INVOCATION: 0x0210,
  UNRECOGNIZED_OPERATION: 0x0211,
  MISTYPED_ARGUMENT: 0x0212,
  RESOURCE_LIMITATION: 0x0213,

  // Storage (PS3.4 B.2.3) and Query/Retrieve (PS3.4 C.4) failures.
  OUT_OF_RESOURCES: 0xa700,
  OUT_OF_RESOURCES_NUMBER_OF_MATCHES: 0xa701, // MOVE/GET: unable to calculate number of matches
  OUT_OF_RESOURCES_SUB_OPERATIONS: 0xa702, // MOVE/GET: unable to perform sub-operations
  MOVE_DESTINATION_UNKNOWN: 0xa801,
  DATASET_DOES_NOT_MATCH_SOP_CLASS: 0xa900, // storage
  IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: 0xa900, // query/retrieve
  CANNOT_UNDERSTAND: 0xc000, // storage, Cxxx
  UNABLE_TO_PROCESS: 0xc000, // query/retrieve, Cxxx

  // Warnings.
  COERCION_OF_DATA_ELEMENTS: 0xb000, // storage
  SUB_OPERATIONS_COMPLETE_WITH_FAILURES: 0xb000, // MOVE/GET
  ELEMENTS_DISCARDED: 0xb006, // storage
  DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING: 0xb007, // storage

  CANCEL: 0xfe00,
  PENDING: 0xff00,
  PENDING_WARNING: 0xff01, // FIND/MOVE/GET: optional keys not supported / warnings
} as const;

export type StatusCategory = 'success' | 'warning' | 'failure' | 'cancel' | 'pending';

/** Which service the status came from; it disambiguates A900, B000 and the Cxxx range. */
export type StatusService = 'storage' | 'find' | 'retrieve';

/** PS3.7 C.1-C.5: 0000 success; FF00/FF01 pending; FE00 cancel; 0001, 0107, 0116 and Bxxx
 *  warning; everything else (Axxx, Cxxx, the other 01xx/02xx, unknown codes) failure. */
export function statusCategory(code: number): StatusCategory {
  if (code === 0x0000) return 'success';
  if (code === 0xff00 || code === 0xff01) return 'pending';
  if (code === 0xfe00) return 'cancel';
  if (code === 0x0001 || code === 0x0107 || code === 0x0116) return 'warning';
  if (code >= 0xb000 && code <= 0xbfff) return 'warning';
  return 'failure';
}

const GENERAL: ReadonlyMap<number, string> = new Map([
  [0x0000, 'Success'],
  [0x0001, 'Requested Optional Attributes Not Supported'],
  [0x0105, 'No Such Attribute'],
  [0x0106, 'Invalid Attribute Value'],
  [0x0107, 'Attribute List Error'],
  [0x0110, 'Processing Failure'],
  [0x0111, 'Duplicate SOP Instance'],
  [0x0112, 'No Such SOP Instance'],
  [0x0113, 'No Such Event Type'],
  [0x0114, 'No Such Argument'],
  [0x0115, 'Invalid Argument Value'],
  [0x0116, 'Attribute Value Out of Range'],
  [0x0117, 'Invalid Object Instance'],
  [0x0118, 'No Such SOP Class'],
  [0x0119, 'Class-Instance Conflict'],
  [0x0120, 'Missing Attribute'],
  [0x0121, 'Missing Attribute Value'],
  [0x0122, 'SOP Class Not Supported'],
  [0x0123, 'No Such Action'],
  [0x0124, 'Not Authorized'],
  [0x0210, 'Duplicate Invocation'],
  [0x0211, 'Unrecognized Operation'],
  [0x0212, 'Mistyped Argument'],
  [0x0213, 'Resource Limitation'],
  [0xa701, 'Out of Resources - Unable to Calculate Number of Matches'],
  [0xa702, 'Out of Resources - Unable to Perform Sub-operations'],
  [0xa801, 'Move Destination Unknown'],
  [0xb006, 'Elements Discarded'],
  [0xb007, 'Data Set Does Not Match SOP Class'],
  [0xfe00, 'Cancel'],
  [0xff00, 'Pending'],
  [0xff01, 'Pending - Optional Keys Not Supported'],
]);

/** A readable name for a status code, e.g. 'Out of Resources'. */
export function statusName(code: number, service?: StatusService): string {
  const exact = GENERAL.get(code);
  if (exact !== undefined) return exact;
  const high = code & 0xff00;
  if (high === 0xa700) return 'Out of Resources';
  if (high === 0xa900) {
    if (service === 'storage') return 'Data Set Does Not Match SOP Class';
    if (service) return 'Identifier Does Not Match SOP Class';
    return 'Data Set or Identifier Does Not Match SOP Class';
  }
  if ((code & 0xf000) === 0xc000) {
    if (service === 'storage') return 'Cannot Understand';
    if (service) return 'Unable to Process';
    return 'Cannot Understand / Unable to Process';
  }
  if (code === 0xb000) {
    if (service === 'storage') return 'Coercion of Data Elements';
    if (service === 'retrieve') return 'Sub-operations Complete - One or More Failures';
    if (service === 'find') return 'Warning';
    return 'Coercion of Data Elements / Sub-operations Complete With Failures';
  }
  const category = statusCategory(code);
  return `Unknown ${category[0].toUpperCase()}${category.slice(1)}`;
}

/** '0xA700 Out of Resources'. */
export function formatStatus(code: number, service?: StatusService): string {
  return `0x${code.toString(16).toUpperCase().padStart(4, '0')} ${statusName(code, service)}`;
}

/** An Error Comment (0000,0902) is LO: at most 64 characters. */
export const errorCommentOf = (text: string): string => text.slice(0, 64);
