// `router certs init [DIR]`: a lab CA, a server certificate and a client certificate, so a TLS lab
// setup works in one command. This is TEST material (the names say so): production keys and
// certificates come from the site's own PKI (see certs/README.md). Uses the openssl command line
// (node:crypto makes keys but cannot sign certificates). RSA-2048 and SHA-256, as the BCP195
// profiles' *_RSA_* suites need (PS3.15 B.9-B.11).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export type KeyAndCert = { key: string; cert: string };
export type LabCerts = { dir: string; ca: KeyAndCert; server: KeyAndCert; client: KeyAndCert };

export const LAB_FILES = {
  ca: { key: 'lab-test-ca.key', cert: 'lab-test-ca.crt' },
  server: { key: 'lab-test-server.key', cert: 'lab-test-server.crt' },
  client: { key: 'lab-test-client.key', cert: 'lab-test-client.crt' },
};

function openssl(args: string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run openssl (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install it (Debian: apt-get install openssl)`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** '/O=x/CN=y' for -subj: a '/' inside a value is escaped. */
function subj(fields: [string, string][]): string {
  return fields.map(([k, v]) => `/${k}=${v.replace(/[/\\]/g, (c) => `\\${c}`)}`).join('');
}

/** A self-signed CA certificate and its key. */
export function createCa(dir: string, name: string, opts: { commonName: string; days: number }): KeyAndCert {
  mkdirSync(dir, { recursive: true });
  const out = { key: join(dir, `${name}.key`), cert: join(dir, `${name}.crt`) };
  openssl([
    'req', '-x509', '-new', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', String(opts.days),
    '-keyout', out.key, '-out', out.cert,
    '-subj', subj([['O', 'dicom-router TEST'], ['CN', opts.commonName]]),
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-addext', 'subjectKeyIdentifier=hash',
  ]);
  chmodSync(out.key, 0o600);
  return out;
}

export type IssueOptions = {
  commonName: string;
  organization?: string;
  /** Host names and IP addresses for subjectAltName. */
  names?: string[];
  usage: 'server' | 'client';
  /** Validity in days from now; -1 makes an already expired certificate (for tests). */
  days: number;
};

/** A key and a certificate signed by `ca`. */
export function issueCertificate(ca: KeyAndCert, dir: string, name: string, opts: IssueOptions): KeyAndCert {
  mkdirSync(dir, { recursive: true });
  const out = { key: join(dir, `${name}.key`), cert: join(dir, `${name}.crt`) };
  const work = mkdtempSync(join(tmpdir(), 'router-certs-'));
  try {
    const csr = join(work, 'req.csr');
    const ext = join(work, 'ext.cnf');
    const sans = (opts.names ?? []).map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`));
    writeFileSync(ext, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      // The router's own certificate serves both ways: listeners, and the client side towards TLS peers.
      `extendedKeyUsage=${opts.usage === 'server' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
      '',
    ].join('\n'));
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', out.key, '-out', csr, '-subj', subj([['O', opts.organization ?? 'dicom-router TEST'], ['CN', opts.commonName]])]);
    openssl([
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-sha256', '-days', String(opts.days),
      '-set_serial', `0x${randomBytes(12).toString('hex')}`, '-extfile', ext, '-out', out.cert,
    ]);
    chmodSync(out.key, 0o600);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** The lab set: CA, server (localhost, 127.0.0.1, ::1, this host, `hosts`) and client. */
export function initLabCerts(dir: string, opts: { days?: number; hosts?: string[]; force?: boolean } = {}): LabCerts {
  const target = resolve(dir);
  const days = opts.days ?? 365;
  const all = Object.values(LAB_FILES).flatMap((f) => [f.key, f.cert]).map((f) => join(target, f));
  const existing = all.filter((f) => existsSync(f));
  if (existing.length > 0 && !opts.force) throw new Error(`not overwriting existing files (use --force): ${existing.join(', ')}`);
  const ca = createCa(target, 'lab-test-ca', { commonName: 'dicom-router LAB TEST CA - not for production', days: Math.max(days, 1) * 2 });
  const names = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(opts.hosts ?? [])])];
  const server = issueCertificate(ca, target, 'lab-test-server', { commonName: 'dicom-router lab test server', names, usage: 'server', days });
  const client = issueCertificate(ca, target, 'lab-test-client', { commonName: 'dicom-router lab test client', names: ['lab-test-client'], usage: 'client', days });
  return { dir: target, ca, server, client };
}

/** What `router certs init` prints: the files and how to use them. */
export function labSummary(c: LabCerts): string {
  return `Created TEST certificates in ${c.dir} (a lab CA: never trust it in production):
  CA:      ${c.ca.cert}   (key ${c.ca.key})
  server:  ${c.server.cert}   (key ${c.server.key})
  client:  ${c.client.cert}   (key ${c.client.key})

A TLS listener in config/router.yaml (the absolute paths below work as they are; a relative path
there is read from the config file's folder):
  listeners:
    - name: tls
      aeTitles: [DICOM_ROUTER]
      port: 2762
      tls:
        profile: bcp195-non-downgrading
        key: ${c.server.key}
        cert: ${c.server.cert}
        ca: ${c.ca.cert}

Try it with DCMTK:
  TCP_NODELAY=1 echoscu -aec DICOM_ROUTER +tls ${c.client.key} ${c.client.cert} +cf ${c.ca.cert} localhost 2762
`;
}
