// Load-time checks of the TLS files a configuration names (listeners[].tls, peers[].tls): each file
// exists and parses, the key belongs to its certificate, the certificate can serve the profiles
// (RSA, at least 2048 bits: every TLS 1.2 suite of PS3.15 B.9-B.11 is *_RSA_*) and has not expired.
// A problem names the field; config.ts places it at its line:column (DESIGN property 4).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export type TlsFileProblem = { path: (string | number)[]; message: string };

const MIN_RSA_BITS = 2048;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readText(file: string): { text: string } | { problem: string } {
  try {
    return { text: readFileSync(file, 'latin1') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder, not a file' : (err as Error).message;
    return { problem: `cannot read '${file}': ${why}` };
  }
}

function certificatesIn(text: string): X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
}

/** Problems with the TLS files of every listener and peer; paths are resolved against `baseDir`. */
export function tlsFileProblems(data: unknown, baseDir: string, now = new Date()): TlsFileProblem[] {
  const out: TlsFileProblem[] = [];
  const root = isObject(data) ? data : {};
  const check = (base: (string | number)[], tls: Record<string, unknown>, role: 'server' | 'client') => {
    const file = (field: string) => (typeof tls[field] === 'string' ? resolve(baseDir, tls[field] as string) : undefined);
    const problem = (field: string, message: string) => out.push({ path: [...base, field], message });

    let key: KeyObject | undefined;
    const keyFile = file('key');
    if (keyFile) {
      const r = readText(keyFile);
      if ('problem' in r) problem('key', r.problem);
      else if (/ENCRYPTED/.test(r.text)) problem('key', `'${keyFile}' is encrypted with a passphrase; the router needs an unencrypted key (protect it with file permissions)`);
      else {
        try {
          key = createPrivateKey(r.text);
        } catch (err) {
          problem('key', `'${keyFile}' is not a PEM private key (${(err as Error).message})`);
        }
      }
    }

    const certFile = file('cert');
    if (certFile) {
      const r = readText(certFile);
      let leaf: X509Certificate | undefined;
      if ('problem' in r) problem('cert', r.problem);
      else {
        try {
          [leaf] = certificatesIn(r.text);
          if (!leaf) problem('cert', `'${certFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
        } catch (err) {
          problem('cert', `'${certFile}' holds a certificate that does not parse (${(err as Error).message})`);
        }
      }
      if (leaf) {
        const type = leaf.publicKey.asymmetricKeyType;
        const bits = leaf.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
        if (type !== 'rsa') problem('cert', `the certificate's key is ${type}; the profiles' TLS 1.2 suites (ECDHE-RSA, DHE-RSA) need an RSA certificate`);
        else if (bits < MIN_RSA_BITS) problem('cert', `the certificate's RSA key has ${bits} bits; BCP 195 needs at least ${MIN_RSA_BITS}`);
        if (leaf.validToDate <= now) problem('cert', `the certificate '${leaf.subject.split('\n').join(', ')}' expired on ${leaf.validToDate.toISOString()}`);
        else if (leaf.validFromDate > now) problem('cert', `the certificate '${leaf.subject.split('\n').join(', ')}' is not valid before ${leaf.validFromDate.toISOString()}`);
        if (key && !leaf.checkPrivateKey(key)) problem('key', `'${keyFile}' is not the private key of the certificate in '${certFile}'`);
      }
    }

    const caFile = file('ca');
    if (caFile) {
      const r = readText(caFile);
      if ('problem' in r) problem('ca', r.problem);
      else {
        try {
          if (certificatesIn(r.text).length === 0) problem('ca', `'${caFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
        } catch (err) {
          problem('ca', `'${caFile}' holds a certificate that does not parse (${(err as Error).message})`);
        }
      }
    }

    if (role === 'client' && (tls.key === undefined) !== (tls.cert === undefined)) {
      problem(tls.key === undefined ? 'key' : 'cert', 'a client certificate needs both key and cert (or neither)');
    }
  };
  (Array.isArray(root.listeners) ? root.listeners : []).forEach((l: unknown, i: number) => {
    if (isObject(l) && isObject(l.tls)) check(['listeners', i, 'tls'], l.tls, 'server');
  });
  (Array.isArray(root.peers) ? root.peers : []).forEach((p: unknown, i: number) => {
    if (isObject(p) && isObject(p.tls)) check(['peers', i, 'tls'], p.tls, 'client');
  });
  return out;
}
