// Orthanc as a Storage Commitment requester (issue 15): its REST API sends instances to the router,
// asks for commitment (POST /modalities/{id}/storage-commitment: N-ACTION) and shows the report it
// received on its own DICOM port (/storage-commitment/{transaction}).
import type { ExecutionContext } from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10File } from '../../actors/ingest/part10-file.ts';
import { newUid, SOP, TS, writeDataset } from './dicom-files.ts';
import { startOrthanc } from './orthanc.ts';
import type { Orthanc } from './orthanc.ts';
import { tempDir } from './processes.ts';

const rm = (dir: string) => rmSync(dir, { recursive: true, force: true });

export type OrthancReport = { Status: string; Success?: { SOPClassUID: string; SOPInstanceUID: string }[]; Failures?: { SOPClassUID: string; SOPInstanceUID: string; FailureReason: number; Description?: string }[] };

export async function rest<T>(orthanc: Orthanc, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${orthanc.httpPort}${path}`, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (!res.ok) throw new Error(`Orthanc ${method} ${path}: ${res.status} ${text}\n${orthanc.output().slice(-3000)}`);
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

/** Orthanc holding `count` new CT instances, with the router as its modality 'router'; their SOP Instance UIDs. */
export async function orthancWithImages(port: number, routerPort: number, count: number): Promise<{ orthanc: Orthanc; sops: string[] }> {
  const orthanc = await startOrthanc({ port, aeTitle: 'MODALITY', modalities: { router: ['DICOM_ROUTER', '127.0.0.1', routerPort] } });
  const dir = tempDir('stgcmt-images-');
  const files = writeDataset(join(dir, 'study'), { sopClassUid: SOP.ct, transferSyntaxUid: TS.explicitLE, count, pixelBytes: 256, studyInstanceUid: newUid() });
  await orthanc.store(files);
  const sops = await Promise.all(files.map(async (f) => (await readPart10File(f)).sopInstanceUid));
  rm(dir);
  return { orthanc, sops };
}

export async function sendAllToRouter(orthanc: Orthanc): Promise<void> {
  const ids = await rest<string[]>(orthanc, 'GET', '/instances');
  await rest(orthanc, 'POST', '/modalities/router/store', { Resources: ids, Synchronous: true });
}

export async function requestCommitment(orthanc: Orthanc, sops: string[], sopClassUid = SOP.ct): Promise<string> {
  const r = await rest<{ ID: string }>(orthanc, 'POST', '/modalities/router/storage-commitment', {
    DicomInstances: sops.map((s) => ({ SOPClassUID: sopClassUid, SOPInstanceUID: s })),
  });
  return r.ID;
}

export async function reportOf(orthanc: Orthanc, transactionUid: string): Promise<OrthancReport> {
  return rest<OrthancReport>(orthanc, 'GET', `/storage-commitment/${transactionUid}`);
}

/** Orthanc's report once it is no longer Pending; on timeout the test fails with Orthanc's output and `also()` (e.g. the router's). */
export async function settledReport(t: ExecutionContext, orthanc: Orthanc, transactionUid: string, timeoutMs = 60_000, also?: () => string): Promise<OrthancReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await reportOf(orthanc, transactionUid);
    if (report.Status !== 'Pending') return report;
    if (Date.now() > deadline) {
      t.fail(`no report after ${timeoutMs} ms:\n${orthanc.output().slice(-3000)}${also ? `\n--- router:\n${also()}` : ''}`);
      return report;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

