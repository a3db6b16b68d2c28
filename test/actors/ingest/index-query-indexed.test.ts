// Local Q/R through the spool's indexes (issue 16): a query naming one study, a UID list or one
// Patient ID reads only those rows (by-study, by-patient index), and answers exactly what reading
// every row answers. The by-patient index is built at open for a spool written before it existed.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { candidates, matchIndex, queryIndex, recordsFor } from '../../../actors/ingest/index-query.ts';
import { Spool } from '../../../actors/ingest/spool.ts';
import type { CommitInput } from '../../../actors/ingest/spool.ts';
import type { QueryLevel } from '../../../protocol/dataset-encode.ts';
import { UNIQUE_KEYS } from '../../../protocol/qr-matching.ts';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'index-query-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function header(tag: string): Buffer {
  const h = Buffer.alloc(132 + 32);
  h.write('DICM', 128, 'latin1');
  h.write(tag.slice(0, 32), 132, 'latin1');
  return h;
}

type Row = { sop: string; study: string; series: string; patient: string; issuer?: string; modality: string };

async function store(spool: Spool, r: Row) {
  const incoming = spool.begin(header(r.sop));
  incoming.write(Buffer.from([1, 2, 3, 4]));
  const input: CommitInput = {
    sopInstanceUid: r.sop, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', studyInstanceUid: r.study, seriesInstanceUid: r.series,
    patientId: r.patient, patientName: 'DOE^JANE', modality: r.modality, ...(r.issuer !== undefined ? { issuerOfPatientId: r.issuer } : {}),
    transferSyntaxUid: '1.2.840.10008.1.2.1', callingAeTitle: 'MODALITY', calledAeTitle: 'ROUTER', listener: 'main', remoteAddress: '127.0.0.1',
    receivedAt: '2024-01-02T03:04:05.000Z',
  };
  const record = await incoming.commit(input);
  await spool.whenWritten(record.path);
}

// Few values, so that queries hit: patient IDs with padding, a backslash (two values), none at all.
const PATIENTS = ['P1', 'P2', ' P1', 'P3 ', 'P1\\P2', ''];
const STUDIES = ['1.1', '1.2', '2.1'];
const row = fc.record({
  sop: fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `9.${i}`)),
  study: fc.constantFrom(...STUDIES),
  series: fc.constantFrom('s1', 's2'),
  patient: fc.constantFrom(...PATIENTS),
  issuer: fc.option(fc.constantFrom('HOSP-A', 'HOSP-B'), { nil: undefined }),
  modality: fc.constantFrom('CT', 'MR'),
}).map((r) => ({ ...r, series: `${r.study}.${r.series}` }));
const studyKey = fc.constantFrom(undefined, '', '1.1', '2.1', '1.1\\2.1', '1.1\\1.1', '9.9', '1.*');
const patientKey = fc.constantFrom(undefined, '', 'P1', 'P2', 'P3', ' P1 ', 'P1\\P2', 'P*', 'P?', 'NONE');
const level = fc.constantFrom<QueryLevel>('PATIENT', 'STUDY', 'SERIES', 'IMAGE');

/** Order-free comparison: the index reads rows in another order than the scan. */
const sorted = (entities: Record<string, string | undefined>[]) => entities.map((e) => JSON.stringify(Object.entries(e).sort())).sort();

test('property: the indexed answer equals the answer of reading every row, at every level (stores, replacements, removals)', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 16 }), fc.array(fc.constantFrom('9.0', '9.1', '9.2'), { maxLength: 2 }),
    fc.array(fc.tuple(level, studyKey, patientKey), { minLength: 1, maxLength: 8 }), async (rows, removed, queries) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'index-query-prop-'));
      const spool = await Spool.open({ dir, fsync: false, verify: false });
      try {
        for (const r of rows) await store(spool, r); // a SOP UID stored again replaces the row (another patient, study)
        for (const sop of removed) await spool.remove(sop);
        const all = spool.list();
        for (const [lvl, study, patient] of queries) {
          const keys: Record<string, string> = {};
          if (study !== undefined) keys.StudyInstanceUID = study;
          if (patient !== undefined) keys.PatientID = patient;
          const indexed = queryIndex(spool, lvl, keys);
          const scanned = matchIndex(lvl, all, keys);
          if (JSON.stringify(sorted(indexed.entities)) !== JSON.stringify(sorted(scanned.entities))) return false;
          if (JSON.stringify(indexed.unsupported) !== JSON.stringify(scanned.unsupported)) return false;
          // What a C-MOVE of the same keys would send.
          const own = UNIQUE_KEYS[lvl][0];
          if (keys[own]) {
            const moved = recordsFor(spool, lvl, keys).map((r) => r.sopInstanceUid).sort();
            const byScan = matchIndex('IMAGE', all, lvl === 'PATIENT' ? { PatientID: keys.PatientID } : keys).entities.map((e) => e.SOPInstanceUID!).sort();
            if (!/[*?]/.test(keys[own]) && JSON.stringify(moved) !== JSON.stringify(byScan)) return false;
          }
        }
        return true;
      } finally {
        await spool.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }), { numRuns: 60 });
  t.pass();
});

test('a single Patient ID or study reads only its rows (not the whole index)', async (t) => {
  const spool = await Spool.open({ dir: tempDir(t), fsync: false, verify: false });
  t.teardown(() => spool.close());
  await store(spool, { sop: '1', study: '1.1', series: '1.1.1', patient: 'P1', modality: 'CT' });
  await store(spool, { sop: '2', study: '1.2', series: '1.2.1', patient: 'P2', modality: 'CT' });
  await store(spool, { sop: '3', study: '1.3', series: '1.3.1', patient: 'P1', modality: 'MR' });
  t.true(spool.indexesPatients);
  t.deepEqual(candidates(spool, 'STUDY', { PatientID: 'P1' }).map((r) => r.sopInstanceUid), ['1', '3']);
  t.deepEqual(candidates(spool, 'STUDY', { StudyInstanceUID: '1.2\\1.3' }).map((r) => r.sopInstanceUid), ['2', '3']);
  t.is(candidates(spool, 'STUDY', { PatientID: 'P*' }).length, 3, 'a wildcard reads every row');
  t.is(candidates(spool, 'PATIENT', { StudyInstanceUID: '1.2' }).length, 3, 'a study key at PATIENT level is not matched, so it does not narrow');
});

test('a spool written before the by-patient index gets it built at open', async (t) => {
  const dir = tempDir(t);
  let spool = await Spool.open({ dir, fsync: false, verify: false });
  await store(spool, { sop: '1', study: '1.1', series: '1.1.1', patient: 'P1', modality: 'CT' });
  await store(spool, { sop: '2', study: '1.2', series: '1.2.1', patient: 'P2', modality: 'CT' });
  // As an older router left it: no by-patient index at all.
  const old = spool.db.openDB<string, string>({ name: 'instances-by-patient', dupSort: true, encoding: 'ordered-binary' });
  await old.clearAsync();
  t.false(spool.indexesPatients);
  t.is(candidates(spool, 'STUDY', { PatientID: 'P1' }).length, 2, 'without it, every row is read (still right)');
  await spool.close();
  spool = await Spool.open({ dir, fsync: false, verify: false });
  t.teardown(() => spool.close());
  t.true(spool.indexesPatients);
  t.deepEqual(spool.list({ patientId: 'P1' }).map((r) => r.sopInstanceUid), ['1']);
  t.deepEqual(queryIndex(spool, 'PATIENT', { PatientID: 'P2' }).entities.map((e) => e.PatientID), ['P2']);
});
