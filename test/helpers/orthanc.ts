// Orthanc as the archive for Query/Retrieve tests: started on loopback with a config the test
// writes (DICOM port, a disabled-remote HTTP port, the move destinations it may send to), loaded
// with DCMTK storescu, stopped by the test.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, run, startProcess, tempDir, waitForPort } from './processes.ts';
import type { Started } from './processes.ts';

export type Orthanc = Started & { port: number; aeTitle: string; dir: string; store(files: string[]): Promise<void> };

export async function startOrthanc(opts: { aeTitle?: string; modalities?: Record<string, [string, string, number]>; dir?: string; port?: number } = {}): Promise<Orthanc> {
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
    LuaScripts: [],
    StableAge: 1,
  };
  const file = join(dir, 'orthanc.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const proc = startProcess('/usr/sbin/Orthanc', [file], { cwd: dir, env: { ...process.env, TCP_NODELAY: '1' } });
  try {
    await waitForPort(port, 20_000);
  } catch (err) {
    await proc.stop();
    throw new Error(`Orthanc did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return {
    ...proc,
    port,
    aeTitle,
    dir,
    async store(files: string[]) {
      const r = await run('storescu', ['-aec', aeTitle, '127.0.0.1', String(port), ...files]);
      if (r.code !== 0) throw new Error(`storescu to Orthanc failed (${r.code}): ${r.stderr}`);
    },
  };
}
