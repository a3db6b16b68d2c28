// TLS test material and routers: a throwaway CA with server and client certificates made per test
// run in a temp folder (scripts/certs.ts, openssl), the router started with plain and TLS listeners
// side by side, and openssl s_client to probe what a listener negotiates.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { createCa, issueCertificate } from '../../scripts/certs.ts';
import type { IssueOptions, KeyAndCert } from '../../scripts/certs.ts';
import { freePort, REPO, run, startProcess, tempDir, waitForOutput, writeConfig } from './processes.ts';
import type { RunResult, Started } from './processes.ts';

export type TestPki = {
  dir: string;
  ca: KeyAndCert;
  /** localhost, 127.0.0.1: the router's (or a TLS peer's) certificate. */
  server: KeyAndCert;
  /** CN=test-modality, SAN DNS:modality.test. */
  client: KeyAndCert;
  issue(name: string, opts: Partial<IssueOptions>): KeyAndCert;
};

export function makeTestPki(dir = tempDir('tls-pki-')): TestPki {
  const ca = createCa(dir, 'test-ca', { commonName: 'dicom-router TEST CA', days: 90 });
  const issue = (name: string, opts: Partial<IssueOptions>) =>
    issueCertificate(ca, dir, name, { commonName: name, usage: 'server', days: 90, names: ['localhost', '127.0.0.1'], ...opts });
  return {
    dir,
    ca,
    server: issue('server', { commonName: 'router.test' }),
    client: issue('client', { commonName: 'test-modality', names: ['modality.test'], usage: 'client' }),
    issue,
  };
}

/** A second, unrelated CA and a client certificate from it (not trusted by the first). */
export function strangerClient(dir = tempDir('tls-stranger-')): KeyAndCert {
  const ca = createCa(dir, 'stranger-ca', { commonName: 'Stranger CA', days: 90 });
  return issueCertificate(ca, dir, 'stranger', { commonName: 'test-modality', names: ['modality.test'], usage: 'client', days: 90 });
}

/**
 * DCMTK's TLS options: our key and certificate (DCMTK always presents one), the trusted CA, and the
 * profile flag (+py non-downgrading, DCMTK's default; +px BCP195; +pz extended).
 */
export const dcmtkTls = (pki: TestPki, who: KeyAndCert = pki.client, profile = '+py') => ['+tls', who.key, who.cert, '+cf', pki.ca.cert, profile];

export type TlsRouter = Started & { ports: Record<string, number>; dataDir: string; configFile: string; dir: string };

/** The router (scripts/router.ts) with the given listeners, each on a free loopback port. */
export async function startTlsRouter(opts: { listeners: Record<string, unknown>[]; peers?: Record<string, unknown>[]; rulesDir?: string; logLevel?: string }): Promise<TlsRouter> {
  const dir = tempDir();
  const dataDir = join(dir, 'data');
  const ports: Record<string, number> = {};
  const listeners = [];
  for (const l of opts.listeners) {
    const port = (l.port as number | undefined) ?? (await freePort());
    ports[l.name as string] = port;
    listeners.push({ bind: '127.0.0.1', ...l, port });
  }
  const rulesDir = opts.rulesDir ?? join(dir, 'routing-rules');
  mkdirSync(rulesDir, { recursive: true });
  const configFile = writeConfig(dir, {
    storage: { dir: dataDir, fsync: false },
    log: { level: opts.logLevel ?? 'info' },
    listeners,
    peers: opts.peers ?? [],
    routing: { rulesDir },
  });
  const proc = startProcess(process.execPath, [join(REPO, 'scripts/router.ts'), 'start', '--config', configFile]);
  try {
    await waitForOutput(proc, '"msg":"router started"');
  } catch (err) {
    await proc.stop();
    throw new Error(`router did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return { ...proc, ports, dataDir, configFile, dir };
}

/** The TLS options of a listener using the test PKI. */
export const listenerTls = (pki: TestPki, extra: Record<string, unknown> = {}) => ({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca.cert, ...extra });

export type Probe = { accepted: boolean; protocol?: string; cipher?: string; output: string };

/**
 * openssl s_client against a listener with a trusted client certificate (null: none). Accepted: a
 * cipher was negotiated and no alert came back. (A server that refuses a client certificate after its
 * TLS 1.3 handshake, or silently, looks accepted from here: check the router's log for those.)
 */
export async function probe(port: number, pki: TestPki, args: string[], who: KeyAndCert | null = pki.client): Promise<Probe> {
  const r: RunResult = await run('openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert, '-verify_return_error',
    ...(who ? ['-cert', who.cert, '-key', who.key] : []), ...args,
  ], { timeoutMs: 10_000 });
  const output = r.stdout + r.stderr;
  const m = /New, (TLSv[\d.]+|\(NONE\)), Cipher is (\S+)/.exec(output);
  const negotiated = m !== null && m[2] !== '(NONE)';
  return { accepted: negotiated && !/alert/i.test(output), protocol: m?.[1], cipher: m?.[2], output };
}

/** A pino logger that keeps its JSON lines, for asserting what was logged. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines: () => lines };
}
