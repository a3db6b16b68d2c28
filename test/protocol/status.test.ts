import test from 'ava';
import { Status, formatStatus, statusCategory, statusName } from '../../protocol/status.ts';
import type { StatusCategory } from '../../protocol/status.ts';

test('status categories of boundary codes (PS3.7 C)', (t) => {
  const cases: Array<[number, StatusCategory]> = [
    [0x0000, 'success'],
    [0x0001, 'warning'],
    [0x0002, 'failure'],
    [0x0105, 'failure'],
    [0x0106, 'failure'],
    [0x0107, 'warning'],
    [0x0110, 'failure'],
    [0x0115, 'failure'],
    [0x0116, 'warning'],
    [0x0117, 'failure'],
    [0x0122, 'failure'],
    [0x0213, 'failure'],
    [0xa700, 'failure'],
    [0xa7ff, 'failure'],
    [0xa801, 'failure'],
    [0xa900, 'failure'],
    [0xafff, 'failure'],
    [0xb000, 'warning'],
    [0xb006, 'warning'],
    [0xb007, 'warning'],
    [0xbfff, 'warning'],
    [0xc000, 'failure'],
    [0xcfff, 'failure'],
    [0xfdff, 'failure'],
    [0xfe00, 'cancel'],
    [0xfe01, 'failure'],
    [0xfeff, 'failure'],
    [0xff00, 'pending'],
    [0xff01, 'pending'],
    [0xff02, 'failure'],
    [0xffff, 'failure'],
  ];
  for (const [code, category] of cases) t.is(statusCategory(code), category, `0x${code.toString(16)}`);
});

test('named constants have the standard values', (t) => {
  t.is(Status.SUCCESS, 0x0000);
  t.is(Status.OUT_OF_RESOURCES, 0xa700);
  t.is(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS, 0xa900);
  t.is(Status.CANNOT_UNDERSTAND, 0xc000);
  t.is(Status.SOP_CLASS_NOT_SUPPORTED, 0x0122);
  t.is(Status.PROCESSING_FAILURE, 0x0110);
  t.is(Status.DUPLICATE_SOP_INSTANCE, 0x0111);
  t.is(Status.NOT_AUTHORIZED, 0x0124);
  t.is(Status.MOVE_DESTINATION_UNKNOWN, 0xa801);
  t.is(Status.OUT_OF_RESOURCES_NUMBER_OF_MATCHES, 0xa701);
  t.is(Status.OUT_OF_RESOURCES_SUB_OPERATIONS, 0xa702);
  t.is(Status.COERCION_OF_DATA_ELEMENTS, 0xb000);
  t.is(Status.SUB_OPERATIONS_COMPLETE_WITH_FAILURES, 0xb000);
  t.is(Status.ELEMENTS_DISCARDED, 0xb006);
  t.is(Status.DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING, 0xb007);
  t.is(Status.CANCEL, 0xfe00);
  t.is(Status.PENDING, 0xff00);
  t.is(Status.PENDING_WARNING, 0xff01);
});

test('every named status has a known name and the expected category', (t) => {
  for (const [key, code] of Object.entries(Status)) {
    t.false(statusName(code).startsWith('Unknown'), key);
    const category = statusCategory(code);
    if (key === 'SUCCESS') t.is(category, 'success');
    else if (key.startsWith('PENDING')) t.is(category, 'pending', key);
    else if (key === 'CANCEL') t.is(category, 'cancel');
  }
});

test('names, with service context for the ambiguous codes', (t) => {
  t.is(formatStatus(0xa700), '0xA700 Out of Resources');
  t.is(formatStatus(0x0000), '0x0000 Success');
  t.is(formatStatus(0x0122), '0x0122 SOP Class Not Supported');
  t.is(statusName(0xa7ff), 'Out of Resources');
  t.is(statusName(0xa701), 'Out of Resources - Unable to Calculate Number of Matches');
  t.is(statusName(0xa801), 'Move Destination Unknown');
  t.is(statusName(0xb000, 'storage'), 'Coercion of Data Elements');
  t.is(statusName(0xb000, 'retrieve'), 'Sub-operations Complete - One or More Failures');
  t.is(statusName(0xb007), 'Data Set Does Not Match SOP Class');
  t.is(statusName(0xb006), 'Elements Discarded');
  t.is(statusName(0xa905, 'storage'), 'Data Set Does Not Match SOP Class');
  t.is(statusName(0xa900, 'find'), 'Identifier Does Not Match SOP Class');
  t.is(statusName(0xc123, 'storage'), 'Cannot Understand');
  t.is(statusName(0xc001, 'find'), 'Unable to Process');
  t.is(formatStatus(0xc001, 'retrieve'), '0xC001 Unable to Process');
  t.is(statusName(0xff01), 'Pending - Optional Keys Not Supported');
  t.is(statusName(0xb123), 'Unknown Warning');
  t.is(statusName(0x0300), 'Unknown Failure');
  t.is(formatStatus(0x0abc), '0x0ABC Unknown Failure');
});
