// TLS per the DICOM secure transport connection profiles (PS3.15 Annex B): the protocol versions
// and cipher suites each profile allows, secure contexts built from key/certificate/CA files,
// reloaded when those files change (new handshakes only: an established association keeps the
// context it was made with), and certificate expiry warnings at start and daily.
//
// Reading of the profiles (PS3.15 B.9 BCP195, B.10 Non-Downgrading BCP195, B.11 Extended BCP195,
// with the suites of shared/conformance/004 sections 7 and 8.6):
// - All three require TLS 1.2 at least and the four TLS 1.2 AEAD suites with ephemeral key exchange
//   (ECDHE/DHE, RSA authentication, AES-GCM).
// - BCP195 and Non-Downgrading BCP195 also negotiate TLS 1.3 with TLS_AES_128_GCM_SHA256 and
//   TLS_AES_256_GCM_SHA384. Their difference in the standard is that plain BCP195 may *fall back* to
//   the suites of the retired Basic/AES profiles (TLS_RSA_WITH_AES_128_CBC_SHA, 3DES) for old peers;
//   the non-downgrading one may not. This router never downgrades (no RSA key exchange, no CBC, nothing
//   below TLS 1.2), so `bcp195` and `bcp195-non-downgrading` negotiate the same set here.
// - Extended BCP195 is TLS 1.2 only, with exactly those four suites.
// DHE uses OpenSSL's automatic group for the certificate's strength ('auto': 2048 bits for RSA-2048,
// as B.12/B.13 require at least 2048); ECDHE uses P-256 and P-384 (at least 256 bits).
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions, SecureVersion } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig, PeerConfig, TlsProfileName } from '../../config/config.ts';

export type TlsProfile = {
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL names of the TLS 1.2 suites, in the order a server prefers them. */
  tls12: string[];
  /** TLS 1.3 suites (IANA names); empty when the profile has no TLS 1.3. */
  tls13: string[];
};

const TLS12_SUITES = ['ECDHE-RSA-AES256-GCM-SHA384', 'DHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'DHE-RSA-AES128-GCM-SHA256'];
const TLS13_SUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'];

export const TLS_PROFILES: Record<TlsProfileName, TlsProfile> = {
  bcp195: { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', tls12: TLS12_SUITES, tls13: TLS13_SUITES },
  'bcp195-non-downgrading': { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', tls12: TLS12_SUITES, tls13: TLS13_SUITES },
  'bcp195-extended': { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', tls12: TLS12_SUITES, tls13: [] },
};

/** Days before expiry from which a certificate is warned about. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

/**
 * The node:tls options that make a context negotiate exactly the profile. Node takes TLS 1.3 suites
 * (names starting TLS_) in the same `ciphers` string and hands them to OpenSSL's ciphersuites list.
 */
export function profileOptions(name: TlsProfileName): SecureContextOptions {
  const p = TLS_PROFILES[name];
  return {
    minVersion: p.minVersion,
    maxVersion: p.maxVersion,
    ciphers: [...p.tls13, ...p.tls12].join(':'),
    honorCipherOrder: true,
    dhparam: 'auto',
    ecdhCurve: 'P-256:P-384',
  };
}

export type TlsFiles = { key?: string; cert?: string; ca: string };

/** One certificate of a TLS configuration, for expiry warnings and the inspector. */
export type CertificateInfo = {
  owner: string; // 'listener tls' / 'peer PACS'
  role: 'certificate' | 'ca';
  file: string;
  subject: string;
  notAfter: string; // ISO
  daysLeft: number;
};

export class TlsMaterialError extends Error {}

type Loaded = { options: SecureContextOptions; context: SecureContext; certificates: CertificateInfo[]; digest: string };

/** All PEM certificates in a file's text, in order. */
export function pemCertificates(text: string): X509Certificate[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsMaterialError(`cannot read the ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certificateInfos(owner: string, role: CertificateInfo['role'], file: string, text: string, now = Date.now()): CertificateInfo[] {
  return pemCertificates(text).map((c) => ({
    owner, role, file,
    subject: c.subject.split('\n').join(', '),
    notAfter: c.validToDate.toISOString(),
    daysLeft: Math.floor((c.validToDate.getTime() - now) / DAY_MS),
  }));
}

/** Reads the files and builds the secure context; throws TlsMaterialError with the reason. */
function loadMaterial(owner: string, profile: TlsProfileName, files: TlsFiles): Loaded {
  const key = files.key ? readFile(files.key, 'key') : undefined;
  const cert = files.cert ? readFile(files.cert, 'certificate') : undefined;
  const ca = readFile(files.ca, 'CA');
  const options: SecureContextOptions = { ...profileOptions(profile), ca, ...(key && cert ? { key, cert } : {}) };
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    throw new TlsMaterialError(`${owner}: ${(err as Error).message}`);
  }
  let certificates: CertificateInfo[];
  try {
    certificates = [
      ...(cert && files.cert ? certificateInfos(owner, 'certificate', files.cert, cert.toString('latin1')).slice(0, 1) : []),
      ...certificateInfos(owner, 'ca', files.ca, ca.toString('latin1')),
    ];
  } catch (err) {
    throw new TlsMaterialError(`${owner}: a certificate does not parse: ${(err as Error).message}`);
  }
  const digest = createHash('sha256').update(key ?? '').update('\0').update(cert ?? '').update('\0').update(ca).digest('hex');
  return { options, context, certificates, digest };
}

/** The client side of a peer's TLS: read at each connect, so replaced files apply to the next association. */
export function clientSecureContext(owner: string, tls: NonNullable<PeerConfig['tls']>): SecureContext {
  return loadMaterial(owner, tls.profile, tls).context;
}

/** A listener's key, certificate chain and CAs as a live secure context, reloaded when the files change. */
export class TlsMaterial {
  readonly owner: string;
  readonly profile: TlsProfileName;
  readonly files: TlsFiles;
  private loaded: Loaded;
  private readonly watchers: FSWatcher[] = [];
  private readonly subscribers = new Set<() => void>();
  private debounce: NodeJS.Timeout | undefined;

  private constructor(owner: string, profile: TlsProfileName, files: TlsFiles, loaded: Loaded) {
    this.owner = owner;
    this.profile = profile;
    this.files = files;
    this.loaded = loaded;
  }

  static load(owner: string, profile: TlsProfileName, files: TlsFiles): TlsMaterial {
    return new TlsMaterial(owner, profile, files, loadMaterial(owner, profile, files));
  }

  /** createSecureContext / tls.Server options: the profile and the current key, chain and CAs. */
  get options(): SecureContextOptions {
    return this.loaded.options;
  }

  get context(): SecureContext {
    return this.loaded.context;
  }

  certificates(): CertificateInfo[] {
    const now = Date.now();
    return this.loaded.certificates.map((c) => ({ ...c, daysLeft: Math.floor((Date.parse(c.notAfter) - now) / DAY_MS) }));
  }

  /** Called after each successful reload. */
  onChange(fn: () => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Re-reads the files. A change that does not load (a key without its certificate yet) keeps the material in force. */
  reload(log: Logger): boolean {
    let next: Loaded;
    try {
      next = loadMaterial(this.owner, this.profile, this.files);
    } catch (err) {
      log.error({ tls: this.owner, err: (err as Error).message }, 'TLS files changed but do not load; the previous key and certificates stay in force');
      return false;
    }
    if (next.digest === this.loaded.digest) return false;
    this.loaded = next;
    const [leaf] = next.certificates.filter((c) => c.role === 'certificate');
    log.info({ tls: this.owner, subject: leaf?.subject, notAfter: leaf?.notAfter }, 'TLS key and certificates reloaded: new handshakes use them');
    for (const fn of this.subscribers) fn();
    warnExpiring(this.certificates(), log);
    return true;
  }

  /** Watch the files' folders (a replaced file is a new inode, so the folder is what to watch). */
  watch(log: Logger, debounceMs = 200): void {
    const names = new Map<string, Set<string>>();
    for (const f of [this.files.key, this.files.cert, this.files.ca]) {
      if (!f) continue;
      const set = names.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      names.set(dirname(f), set);
    }
    for (const [dir, files] of names) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name && !files.has(String(name))) return;
          clearTimeout(this.debounce);
          this.debounce = setTimeout(() => this.reload(log), debounceMs);
          this.debounce.unref();
        });
        w.on('error', (err) => log.warn({ tls: this.owner, dir, err: err.message }, 'cannot watch TLS files; reload needs a restart'));
        this.watchers.push(w);
      } catch (err) {
        log.warn({ tls: this.owner, dir, err: (err as Error).message }, 'cannot watch TLS files; reload needs a restart');
      }
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    this.subscribers.clear();
  }
}

/** Logs each certificate that has expired (error) or expires within the warning period (warn); returns those. */
export function warnExpiring(certificates: CertificateInfo[], log: Logger, warnDays = EXPIRY_WARNING_DAYS): CertificateInfo[] {
  const due = certificates.filter((c) => c.daysLeft < warnDays);
  for (const c of due) {
    const line = { tls: c.owner, role: c.role, file: c.file, subject: c.subject, notAfter: c.notAfter, daysLeft: c.daysLeft };
    if (Date.parse(c.notAfter) <= Date.now()) log.error(line, 'TLS certificate has expired');
    else log.warn(line, `TLS certificate expires within ${warnDays} days`);
  }
  return due;
}

/** A peer's certificate seen in a handshake: warned about when it expires soon (we cannot renew it, its owner can). */
export function warnIfPeerCertificateExpiring(cert: X509Certificate | undefined, owner: string, log: Logger): void {
  if (!cert) return;
  const daysLeft = Math.floor((cert.validToDate.getTime() - Date.now()) / DAY_MS);
  if (daysLeft < EXPIRY_WARNING_DAYS) {
    log.warn({ tls: owner, role: 'remote', subject: cert.subject.split('\n').join(', '), notAfter: cert.validToDate.toISOString(), daysLeft }, `remote TLS certificate expires within ${EXPIRY_WARNING_DAYS} days`);
  }
}

export type TlsSupervisor = {
  /** The live material of a TLS listener. */
  listener(name: string): TlsMaterial | undefined;
  /** Every configured certificate with its expiry (listeners' and peers'), for the inspector. */
  certificates(): CertificateInfo[];
  stop(): void;
};

/**
 * Loads and watches every TLS listener's material, and checks every configured certificate's expiry
 * at start and then daily. Peers' files are read at each connect (see clientSecureContext).
 */
export function startTlsSupervisor(
  config: { listeners: ListenerConfig[]; peers: PeerConfig[] },
  log: Logger,
  opts: { checkEveryMs?: number; watch?: boolean } = {},
): TlsSupervisor {
  const materials = new Map<string, TlsMaterial>();
  try {
    for (const l of config.listeners) {
      if (!l.tls) continue;
      const m = TlsMaterial.load(`listener ${l.name}`, l.tls.profile, l.tls);
      materials.set(l.name, m);
      if (opts.watch ?? true) m.watch(log);
    }
  } catch (err) {
    for (const m of materials.values()) m.close();
    throw err;
  }
  const peerCertificates = (): CertificateInfo[] =>
    config.peers.flatMap((p) => {
      if (!p.tls) return [];
      const owner = `peer ${p.name}`;
      const read = (file: string) => {
        try {
          return readFileSync(file, 'latin1');
        } catch {
          return '';
        }
      };
      try {
        return [
          ...(p.tls.cert ? certificateInfos(owner, 'certificate', p.tls.cert, read(p.tls.cert)).slice(0, 1) : []),
          ...certificateInfos(owner, 'ca', p.tls.ca, read(p.tls.ca)),
        ];
      } catch {
        return []; // replaced by something unreadable since the config was loaded: the next connect says why
      }
    });
  const certificates = () => [...[...materials.values()].flatMap((m) => m.certificates()), ...peerCertificates()];
  warnExpiring(certificates(), log);
  const timer = setInterval(() => warnExpiring(certificates(), log), opts.checkEveryMs ?? DAY_MS);
  timer.unref();
  return {
    listener: (name) => materials.get(name),
    certificates,
    stop() {
      clearInterval(timer);
      for (const m of materials.values()) m.close();
    },
  };
}
