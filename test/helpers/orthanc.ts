// Orthanc as the archive for Query/Retrieve tests: started on loopback with a config the test
// writes (DICOM port, a disabled-remote HTTP port, the move destinations it may send to), loaded
// with DCMTK storescu, stopped by the test.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startDicomServer, tempDir } from './processes.ts';
import type { DicomServer } from './processes.ts';

/** httpPort: its REST API on 127.0.0.1. */
export type Orthanc = DicomServer & { httpPort: number };

/** lua: a Lua script Orthanc runs (e.g. an OnStoredInstance callback). */
export type OrthancOptions = { aeTitle?: string; modalities?: Record<string, [string, string, number]>; dir?: string; port?: number; lua?: string };

export async function startOrthanc(opts: OrthancOptions = {}): Promise<Orthanc> {
  // Ports chosen here may be taken by another test's server before Orthanc binds them: try again with others.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOrthancOnce(opts);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/port \d+ taken|no C-ECHO answer/.test((err as Error).message)) throw err;
    }
  }
}

async function startOrthancOnce(opts: OrthancOptions): Promise<Orthanc> {
  const dir = opts.dir ?? tempDir('orthanc-');
  mkdirSync(join(dir, 'db'), { recursive: true });
  const port = opts.port ?? (await freePort());
  const httpPort = await freePort();
  const aeTitle = opts.aeTitle ?? 'ORTHANC';
  const config = {
    Name: 'test-archive',
    DicomAet: aeTitle,
    DicomPort: port,
    HttpPort: httpPort,
    RemoteAccessAllowed: false,
    StorageDirectory: join(dir, 'db'),
    IndexDirectory: join(dir, 'db'),
    DicomModalities: opts.modalities ?? {},
    DicomCheckCalledAet: false,
    DicomAlwaysAllowFind: true,
    DicomAlwaysAllowMove: true,
    DicomAlwaysAllowStore: true,
    DicomAlwaysAllowEcho: true,
    Plugins: [],
    LuaScripts: opts.lua === undefined ? [] : [join(dir, 'script.lua')],
    StableAge: 1,
  };
  if (opts.lua !== undefined) writeFileSync(join(dir, 'script.lua'), opts.lua);
  const file = join(dir, 'orthanc.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { ...(await startDicomServer('Orthanc', '/usr/sbin/Orthanc', [file], { port, aeTitle, dir })), httpPort };
}
