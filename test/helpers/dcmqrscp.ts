// DCMTK dcmqrscp as a workstation that both stores and answers queries: one AE title whose storage
// area is a temp dir (it accepts C-STORE into its index and answers C-FIND from it), on loopback,
// stopped by the test. Fork mode: single-process mode (-s) of 3.6.7 dies after an association.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startDicomServer, tempDir } from './processes.ts';
import type { DicomServer } from './processes.ts';

export type Dcmqrscp = DicomServer & { files(): string[] };

export async function startDcmqrscp(opts: { aeTitle?: string; dir?: string } = {}): Promise<Dcmqrscp> {
  const dir = opts.dir ?? tempDir('dcmqrscp-');
  const storage = join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const aeTitle = opts.aeTitle ?? 'WS';
  // dcmqrscp.cfg(5): the AETable line is AE title, storage area, access, (max studies, max bytes per study), peers.
  const config = [
    `NetworkTCPPort = ${port}`,
    'MaxPDUSize = 16384',
    'MaxAssociations = 16',
    'HostTable BEGIN',
    'HostTable END',
    'VendorTable BEGIN',
    'VendorTable END',
    'AETable BEGIN',
    `${aeTitle} ${storage} RW (100, 1024mb) ANY`,
    'AETable END',
    '',
  ].join('\n');
  const file = join(dir, 'dcmqrscp.cfg');
  writeFileSync(file, config);
  const server = await startDicomServer('dcmqrscp', 'dcmqrscp', ['-c', file, String(port)], { port, aeTitle, dir });
  return {
    ...server,
    /** The instance files in its storage area (its index.dat aside). */
    files: () => readdirSync(storage).filter((n) => n.endsWith('.dcm')).map((n) => join(storage, n)),
  };
}
