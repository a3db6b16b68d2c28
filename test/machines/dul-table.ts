// An independent transcription of PS3.8 Table 9-10 (DICOM UL state transition table), written
// column by column (one state at a time) from the standard, as test data for the association
// machine. For each state: event number → [action, next state]. Events absent from a state are
// blank cells. Two actions have conditional next states: AE-6 (Sta3 if the A-ASSOCIATE-RQ is
// acceptable to the service-provider, else Sta13) and AR-8 (Sta9 for the association-requestor,
// Sta10 for the acceptor); they are written 'Sta3|Sta13' and 'Sta9|Sta10'.

export type StateId =
  | 'Sta1' | 'Sta2' | 'Sta3' | 'Sta4' | 'Sta5' | 'Sta6' | 'Sta7'
  | 'Sta8' | 'Sta9' | 'Sta10' | 'Sta11' | 'Sta12' | 'Sta13';

export type Cell = readonly [action: string, next: string];

export const STATES: readonly StateId[] = [
  'Sta1', 'Sta2', 'Sta3', 'Sta4', 'Sta5', 'Sta6', 'Sta7', 'Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12', 'Sta13',
];

export const EVENT_NUMBERS: readonly number[] = Array.from({ length: 19 }, (_, i) => i + 1);

export const DUL_TABLE: Record<StateId, Partial<Record<number, Cell>>> = {
  // No association
  Sta1: {
    1: ['AE-1', 'Sta4'],
    5: ['AE-5', 'Sta2'],
  },
  // Transport connection open, awaiting A-ASSOCIATE-RQ
  Sta2: {
    3: ['AA-1', 'Sta13'],
    4: ['AA-1', 'Sta13'],
    6: ['AE-6', 'Sta3|Sta13'],
    10: ['AA-1', 'Sta13'],
    12: ['AA-1', 'Sta13'],
    13: ['AA-1', 'Sta13'],
    16: ['AA-2', 'Sta1'],
    17: ['AA-5', 'Sta1'],
    18: ['AA-2', 'Sta1'],
    19: ['AA-1', 'Sta13'],
  },
  // Awaiting local A-ASSOCIATE response
  Sta3: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    7: ['AE-7', 'Sta6'],
    8: ['AE-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AA-8', 'Sta13'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Awaiting transport connection opening
  Sta4: {
    2: ['AE-2', 'Sta5'],
    15: ['AA-2', 'Sta1'],
    17: ['AA-4', 'Sta1'],
  },
  // Awaiting A-ASSOCIATE-AC or -RJ
  Sta5: {
    3: ['AE-3', 'Sta6'],
    4: ['AE-4', 'Sta1'],
    6: ['AA-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AA-8', 'Sta13'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Data transfer
  Sta6: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    9: ['DT-1', 'Sta6'],
    10: ['DT-2', 'Sta6'],
    11: ['AR-1', 'Sta7'],
    12: ['AR-2', 'Sta8'],
    13: ['AA-8', 'Sta13'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Awaiting A-RELEASE-RP
  Sta7: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    10: ['AR-6', 'Sta7'],
    12: ['AR-8', 'Sta9|Sta10'],
    13: ['AR-3', 'Sta1'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Awaiting local A-RELEASE response
  Sta8: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    9: ['AR-7', 'Sta8'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AA-8', 'Sta13'],
    14: ['AR-4', 'Sta13'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Release collision, requestor side, awaiting local A-RELEASE response
  Sta9: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AA-8', 'Sta13'],
    14: ['AR-9', 'Sta11'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Release collision, acceptor side, awaiting A-RELEASE-RP
  Sta10: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AR-10', 'Sta12'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Release collision, requestor side, awaiting A-RELEASE-RP
  Sta11: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AR-3', 'Sta1'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Release collision, acceptor side, awaiting local A-RELEASE response
  Sta12: {
    3: ['AA-8', 'Sta13'],
    4: ['AA-8', 'Sta13'],
    6: ['AA-8', 'Sta13'],
    10: ['AA-8', 'Sta13'],
    12: ['AA-8', 'Sta13'],
    13: ['AA-8', 'Sta13'],
    14: ['AR-4', 'Sta13'],
    15: ['AA-1', 'Sta13'],
    16: ['AA-3', 'Sta1'],
    17: ['AA-4', 'Sta1'],
    19: ['AA-8', 'Sta13'],
  },
  // Awaiting transport connection close
  Sta13: {
    3: ['AA-6', 'Sta13'],
    4: ['AA-6', 'Sta13'],
    6: ['AA-7', 'Sta13'],
    10: ['AA-6', 'Sta13'],
    12: ['AA-6', 'Sta13'],
    13: ['AA-6', 'Sta13'],
    16: ['AA-2', 'Sta1'],
    17: ['AR-5', 'Sta1'],
    18: ['AA-2', 'Sta1'],
    19: ['AA-7', 'Sta13'],
  },
};
