// Router configuration: read a YAML file, validate it against router.schema.json (ajv) plus
// the checks a schema cannot express, apply defaults and resolve paths. Every problem names
// the file, line:column, the field and what was expected (DESIGN property 4).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BlockList, isIP } from 'node:net';
import { LineCounter, parseDocument } from 'yaml';
import { EXPECTED, schemaProblems, validate } from './schema-problems.ts';
import { closest, formatPath, got, isObject, locate } from './yaml-problems.ts';
import type { RawProblem, Seg } from './yaml-problems.ts';
import { tlsFileProblems } from './tls-files.ts';
import { clusterProblems, toClusterConfig } from './cluster-config.ts';
import type { ClusterConfig } from './cluster-config.ts';
export type { ClusterConfig } from './cluster-config.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type TransferSyntaxPolicy = 'proposal-order' | 'prefer-explicit';
export type ListenerTimeouts = { artimSeconds: number; idleSeconds: number; dimseSeconds: number };
/** PS3.15 Annex B secure transport connection profiles (see actors/net/tls.ts for what each negotiates). */
export type TlsProfileName = 'bcp195' | 'bcp195-non-downgrading' | 'bcp195-extended';
/** A calling AE title and the client certificate allowed to use it (subject DN and/or a subjectAltName). */
export type AeTitleBinding = { aeTitle: string; subject?: string; san?: string };
export type ListenerTlsConfig = {
  profile: TlsProfileName;
  key: string; // absolute paths
  cert: string;
  ca: string;
  requireClientCert: boolean;
  handshakeSeconds: number;
  aeTitleBindings: AeTitleBinding[];
};
export type PeerTlsConfig = { profile: TlsProfileName; key?: string; cert?: string; ca: string; serverName?: string };
/** Default ports: DICOM's 11112 plain, and 2762 (dicom-tls, PS3.15 B.1) for TLS. */
export const DEFAULT_PORT = 11112;
export const DEFAULT_TLS_PORT = 2762;
export type ListenerConfig = {
  name: string;
  aeTitles: string[]; // trimmed: leading/trailing spaces are not significant (PS3.5 6.2, AE)
  port: number;
  bind: string;
  acceptCallingAeTitles: string[]; // empty = any
  allowedSources: string[]; // IPs or CIDRs; empty = any
  rateLimit: { attempts: number; perSeconds: number }; // association attempts per source address
  sopClasses: 'default' | string[];
  transferSyntaxes: 'default' | string[];
  transferSyntaxPolicy: TransferSyntaxPolicy;
  maxPduLength: number;
  maxAssociations: number;
  timeouts: ListenerTimeouts;
  /** Absent: plain TCP. */
  tls?: ListenerTlsConfig;
  /** Absent: the listener offers no Query/Retrieve contexts. */
  queryRetrieve?: QueryRetrieveConfig;
  /** Storage Commitment Push Model SCP (issue 15; actors/jobs/commitment.ts). */
  storageCommitment: StorageCommitmentConfig;
};
/** When an instance counts as committed (issue 15). */
export type CommitWhen = 'stored' | 'delivered' | 'committed-downstream';
export type StorageCommitmentConfig = {
  enabled: boolean;
  commitWhen: CommitWhen;
  report: 'same-association-first' | 'always-new-association';
  timeoutHours: number;
};
/** Where a listener's C-FIND is answered from: configured peers' names, and/or the router's own spool. */
export const LOCAL_SOURCE = 'local';
export type QrMoveMode = 'retrieve-through' | 'relay';
export type QueryRetrieveConfig = { sources: string[]; move: QrMoveMode };
export type RetryConfig = { attempts: number; initialBackoffSeconds: number; maxBackoffSeconds: number; jitter: number };
/** What to do when an instance already delivered to (or queued for) a peer is routed to it again (issue 8). */
export type DuplicatePolicy = 'always' | 'never' | 'if-changed';
export const DUPLICATE_POLICIES: readonly DuplicatePolicy[] = ['always', 'never', 'if-changed'];
/** What a peer's C-STORE status means for the queue item, when the standard reading does not fit the peer (issue 12). */
export type StatusOutcome = 'delivered' | 'retry' | 'dead';
export type PeerConfig = {
  name: string; aeTitle: string; host: string; port: number; callingAeTitle: string; maxAssociations: number; maxPduLength: number;
  transferSyntaxes: 'default' | string[]; retry: RetryConfig; idleReleaseSeconds: number; timeouts: { connectSeconds: number; dimseSeconds: number };
  /** One association at a time from the whole router, released as soon as the batch is sent. */
  exclusive: boolean;
  /** By status (4 upper-case hex digits, e.g. 'A702'): what it means for this peer, overriding the standard classification. */
  statusOverrides: Readonly<Record<string, StatusOutcome>>;
  /** Default 'always' (resending never loses an image; the receiving PACS applies its own duplicate policy). */
  duplicates: DuplicatePolicy;
  /** Absent: plain TCP. */
  tls?: PeerTlsConfig;
  /** Storage Commitment Push Model SCU toward this peer (issue 15; actors/jobs/commitment-scu.ts). */
  storageCommitment: PeerStorageCommitmentConfig;
};
export type PeerStorageCommitmentConfig = { enabled: boolean; batch: number; waitHours: number };
export type RoutingConfig = { rulesDir: string; retentionHours: number };
/** The inspector server (actors/observe/inspector.ts); a non-loopback bind requires a token (checked at load). */
export type InspectConfig = { enabled: boolean; bind: string; port: number; token?: string; showPhi: boolean; stately?: { url: string } };
export type ShutdownConfig = { graceSeconds: number };
export type RouterConfig = {
  storage: { dir: string; fsync: boolean }; // dir is absolute
  log: { level: LogLevel };
  listeners: ListenerConfig[];
  peers: PeerConfig[];
  routing: RoutingConfig;
  audit: { syslog?: { host: string; port: number } };
  inspect: InspectConfig;
  shutdown: ShutdownConfig;
  /** Absent: one node on the embedded LMDB queue (config/cluster-config.ts). */
  cluster?: ClusterConfig;
};

export type ConfigProblem = { file: string; line?: number; column?: number; path: string; message: string };

/** "file:line:col: path: message" (parts that are unknown are left out). */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export class ConfigError extends Error {
  readonly file: string;
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

export function loadConfig(file: string): RouterConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(file, [{ file, path: '', message: `cannot read the config file: ${reason}` }]);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): RouterConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => ({
      file, ...at(e.pos[0]), path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}`,
    })));
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {}; // an empty file is an empty map: "listeners" is then reported missing
  } catch (err) {
    throw new ConfigError(file, [{ file, line: 1, column: 1, path: '', message: `YAML error: ${(err as Error).message}` }]);
  }

  validate(data); // also fills in defaults (useDefaults)
  defaultPorts(data);
  const semantic = [...semanticProblems(data), ...clusterProblems(isObject(data) ? data : {}, dirname(resolve(file))), ...tlsFileProblems(data, dirname(resolve(file))).map((p) => ({ ...p, target: 'value' as const }))];
  const semanticPaths = new Set(semantic.map((p) => formatPath(p.path)));
  const raw = [
    // The schema's string patterns are there for editors; where a semantic check explains the
    // same value more precisely, keep only that one.
    ...schemaProblems(validate.errors ?? [], data).filter((p) => !(p.keyword && STRING_RULES.has(p.keyword) && semanticPaths.has(formatPath(p.path)))),
    ...semantic,
  ];
  if (raw.length > 0) {
    const problems = raw.map((p) => ({ file, ...at(locate(doc, p.path, p.target)), path: formatPath(p.path), message: p.message }));
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(file, problems);
  }
  return toRouterConfig(data as RouterConfig, file);
}

/** A listener without a port gets 11112, or 2762 when it is a TLS listener. */
function defaultPorts(data: unknown): void {
  const listeners = isObject(data) && Array.isArray(data.listeners) ? data.listeners : [];
  for (const l of listeners) if (isObject(l) && l.port === undefined) l.port = isObject(l.tls) ? DEFAULT_TLS_PORT : DEFAULT_PORT;
}

function toRouterConfig(c: RouterConfig, file: string): RouterConfig {
  const trimAll = (xs: string[]) => xs.map((x) => x.trim());
  const path = (p: string) => resolve(dirname(resolve(file)), p);
  return {
    storage: { dir: resolve(dirname(resolve(file)), c.storage.dir), fsync: c.storage.fsync },
    log: { level: c.log.level },
    listeners: c.listeners.map((l) => ({
      name: l.name, aeTitles: trimAll(l.aeTitles), port: l.port, bind: l.bind,
      acceptCallingAeTitles: trimAll(l.acceptCallingAeTitles), allowedSources: [...l.allowedSources],
      sopClasses: l.sopClasses === 'default' ? 'default' : [...l.sopClasses],
      transferSyntaxes: l.transferSyntaxes === 'default' ? 'default' : [...l.transferSyntaxes],
      transferSyntaxPolicy: l.transferSyntaxPolicy, maxPduLength: l.maxPduLength, maxAssociations: l.maxAssociations,
      timeouts: { ...l.timeouts },
      rateLimit: { ...l.rateLimit },
      ...(l.queryRetrieve ? { queryRetrieve: { sources: [...l.queryRetrieve.sources], move: l.queryRetrieve.move } } : {}),
      storageCommitment: { ...l.storageCommitment },
      ...(l.tls ? {
        tls: {
          profile: l.tls.profile, key: path(l.tls.key), cert: path(l.tls.cert), ca: path(l.tls.ca),
          requireClientCert: l.tls.requireClientCert, handshakeSeconds: l.tls.handshakeSeconds,
          aeTitleBindings: l.tls.aeTitleBindings.map((b) => ({ ...b, aeTitle: b.aeTitle.trim() })),
        },
      } : {}),
    })),
    peers: c.peers.map((p) => ({
      name: p.name ?? p.aeTitle.trim(), aeTitle: p.aeTitle.trim(), host: p.host, port: p.port, callingAeTitle: p.callingAeTitle.trim(),
      maxAssociations: p.maxAssociations, maxPduLength: p.maxPduLength,
      transferSyntaxes: p.transferSyntaxes === 'default' ? 'default' : [...p.transferSyntaxes],
      retry: { ...p.retry }, idleReleaseSeconds: p.idleReleaseSeconds, timeouts: { ...p.timeouts }, duplicates: p.duplicates,
      exclusive: p.exclusive, storageCommitment: { ...p.storageCommitment },
      statusOverrides: Object.fromEntries(Object.entries(p.statusOverrides).map(([code, outcome]) => [code.toUpperCase(), outcome])),
      ...(p.tls ? {
        tls: {
          profile: p.tls.profile, ca: path(p.tls.ca),
          ...(p.tls.key !== undefined && p.tls.cert !== undefined ? { key: path(p.tls.key), cert: path(p.tls.cert) } : {}),
          ...(p.tls.serverName !== undefined ? { serverName: p.tls.serverName } : {}),
        },
      } : {}),
    })),
    routing: { rulesDir: resolve(dirname(resolve(file)), c.routing.rulesDir), retentionHours: c.routing.retentionHours },
    audit: c.audit.syslog ? { syslog: { host: c.audit.syslog.host, port: c.audit.syslog.port } } : {},
    inspect: {
      enabled: c.inspect.enabled, bind: c.inspect.bind, port: c.inspect.port, showPhi: c.inspect.showPhi,
      ...(c.inspect.token !== undefined ? { token: c.inspect.token } : {}),
      ...(c.inspect.stately ? { stately: { url: c.inspect.stately.url } } : {}),
    },
    shutdown: { graceSeconds: c.shutdown.graceSeconds },
    ...(c.cluster ? { cluster: toClusterConfig(c.cluster, dirname(resolve(file)))! } : {}),
  };
}

// ---- problems before they are placed in the file ----

const STRING_RULES = new Set(['pattern', 'minLength', 'maxLength']);

// ---- checks a schema cannot express ----

function semanticProblems(data: unknown): RawProblem[] {
  const out: RawProblem[] = [];
  const check = (path: Seg[], value: unknown, rule: (v: string) => string | undefined) => {
    const why = typeof value === 'string' ? rule(value) : undefined;
    if (why) out.push({ path, target: 'value', message: `${why} (got ${got(value)})` });
  };
  const eachString = (path: Seg[], list: unknown, rule: (v: string) => string | undefined) => {
    if (Array.isArray(list)) list.forEach((v, i) => check([...path, i], v, rule));
  };
  const root = (isObject(data) ? data : {}) as Record<string, unknown>;
  const listeners = Array.isArray(root.listeners) ? root.listeners : [];
  const names = new Map<string, number>();
  const bound: { bind: string; port: number; index: number }[] = [];
  listeners.forEach((l: unknown, i: number) => {
    if (!isObject(l)) return;
    const base: Seg[] = ['listeners', i];
    if (typeof l.name === 'string') {
      const first = names.get(l.name);
      if (first !== undefined) out.push({ path: [...base, 'name'], target: 'value', message: `duplicate listener name '${l.name}' (also used by listeners[${first}])` });
      else names.set(l.name, i);
    }
    eachString([...base, 'aeTitles'], l.aeTitles, aeTitleProblem);
    eachString([...base, 'acceptCallingAeTitles'], l.acceptCallingAeTitles, aeTitleProblem);
    eachString([...base, 'allowedSources'], l.allowedSources, ipOrCidrProblem);
    eachString([...base, 'sopClasses'], l.sopClasses, uidProblem);
    eachString([...base, 'transferSyntaxes'], l.transferSyntaxes, uidProblem);
    check([...base, 'bind'], l.bind, (v) => isIP(v) ? undefined : `must be ${EXPECTED.ipAddress}`);
    if (typeof l.bind === 'string' && isIP(l.bind) && Number.isInteger(l.port)) {
      const port = l.port as number;
      const clash = bound.find((b) => b.port === port && bindsOverlap(b.bind, l.bind as string));
      if (clash) out.push({ path: [...base, 'port'], target: 'value', message: `port ${port} on ${l.bind} is already used by listeners[${clash.index}] (bound to ${clash.bind})` });
      bound.push({ bind: l.bind, port, index: i });
    }
    const tls = isObject(l.tls) ? l.tls : undefined;
    if (tls && Array.isArray(tls.aeTitleBindings)) {
      tls.aeTitleBindings.forEach((b: unknown, j: number) => {
        if (!isObject(b)) return;
        const at: Seg[] = [...base, 'tls', 'aeTitleBindings', j];
        check([...at, 'aeTitle'], b.aeTitle, aeTitleProblem);
        if (b.subject === undefined && b.san === undefined) out.push({ path: at, target: 'value', message: 'an AE title binding needs subject or san (or both): what the certificate must carry' });
      });
    }
  });
  const peers = Array.isArray(root.peers) ? root.peers : [];
  const peerNames = new Map<string, number>();
  peers.forEach((p: unknown, i: number) => {
    if (!isObject(p)) return;
    check(['peers', i, 'aeTitle'], p.aeTitle, aeTitleProblem);
    check(['peers', i, 'callingAeTitle'], p.callingAeTitle, aeTitleProblem);
    check(['peers', i, 'host'], p.host, (v) => isIP(v) || HOSTNAME.test(v) ? undefined : 'must be a host name or an IP address');
    if (isObject(p.tls)) check(['peers', i, 'tls', 'serverName'], p.tls.serverName, (v) => HOSTNAME.test(v) || isIP(v) ? undefined : 'must be a host name (or an IP address)');
    eachString(['peers', i, 'transferSyntaxes'], p.transferSyntaxes, uidProblem);
    const name = typeof p.name === 'string' ? p.name : typeof p.aeTitle === 'string' ? p.aeTitle.trim() : undefined;
    if (name !== undefined) {
      const first = peerNames.get(name);
      const at: Seg[] = ['peers', i, typeof p.name === 'string' ? 'name' : 'aeTitle'];
      if (first !== undefined) out.push({ path: at, target: 'value', message: `duplicate peer name '${name}' (also used by peers[${first}]); give one of them a distinct name` });
      else peerNames.set(name, i);
    }
    if (isObject(p.statusOverrides)) {
      for (const code of Object.keys(p.statusOverrides)) {
        if (STATUS_CODE.test(code)) continue;
        // YAML reads an unquoted 0110 as the number 110: the hint says how to keep the digits.
        const hint = /^\d{1,3}$/.test(code) ? `; write it in quotes ('${code.padStart(4, '0')}'), or YAML reads it as a number` : '';
        out.push({ path: ['peers', i, 'statusOverrides', code], target: 'key', message: `a status must be 4 hexadecimal digits, e.g. A702 (got '${code}')${hint}` });
      }
    }
    if (p.exclusive === true && typeof p.maxAssociations === 'number' && p.maxAssociations > 1) {
      out.push({ path: ['peers', i, 'maxAssociations'], target: 'value', message: `an exclusive peer takes one association at a time: maxAssociations must be 1 (got ${p.maxAssociations}), or drop 'exclusive'` });
    }
    const retry = isObject(p.retry) ? p.retry : undefined;
    if (retry && typeof retry.initialBackoffSeconds === 'number' && typeof retry.maxBackoffSeconds === 'number' && retry.initialBackoffSeconds > retry.maxBackoffSeconds) {
      out.push({ path: ['peers', i, 'retry', 'maxBackoffSeconds'], target: 'value', message: `must be at least initialBackoffSeconds (${retry.initialBackoffSeconds})` });
    }
  });
  out.push(...queryRetrieveProblems(listeners, peers));
  const inspect = isObject(root.inspect) ? root.inspect : undefined;
  if (inspect && typeof inspect.bind === 'string' && isIP(inspect.bind) && !isLoopback(inspect.bind) && inspect.enabled !== false && typeof inspect.token !== 'string') {
    out.push({ path: ['inspect', 'bind'], target: 'value', message: `binding the inspector to a non-loopback address needs inspect.token (got ${got(inspect.bind)})` });
  }
  return out;
}

/** A Q/R source names a configured peer (by its name) or 'local'. */
function queryRetrieveProblems(listeners: unknown[], peers: unknown[]): RawProblem[] {
  const out: RawProblem[] = [];
  const peerNames = peers.filter(isObject).map((p) => (typeof p.name === 'string' ? p.name : typeof p.aeTitle === 'string' ? p.aeTitle.trim() : undefined)).filter((n) => n !== undefined);
  listeners.forEach((l, i) => {
    const qr = isObject(l) && isObject(l.queryRetrieve) ? l.queryRetrieve : undefined;
    if (!qr || !Array.isArray(qr.sources)) return;
    qr.sources.forEach((s: unknown, j: number) => {
      if (typeof s !== 'string' || s === LOCAL_SOURCE || peerNames.includes(s)) return;
      const guess = closest(s, [LOCAL_SOURCE, ...peerNames]);
      out.push({
        path: ['listeners', i, 'queryRetrieve', 'sources', j], target: 'value',
        message: `must be 'local' or the name of a configured peer (got ${got(s)}${guess ? `; did you mean '${guess}'?` : ''}; peers: ${peerNames.length > 0 ? peerNames.join(', ') : 'none'})`,
      });
    });
  });
  return out;
}

/** 127.0.0.0/8, ::1 and ::ffff:127.x: reachable only from this host. */
export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}


const STATUS_CODE = /^[0-9A-Fa-f]{4}$/;

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** Two sockets on the same port conflict if their addresses are equal or one is a wildcard covering the other (:: is dual-stack). */
function bindsOverlap(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  return (a === '0.0.0.0' && isIP(b) === 4) || (b === '0.0.0.0' && isIP(a) === 4);
}

/** PS3.5 6.2 (VR AE): at most 16 characters of the default repertoire, no backslash or control characters, not only spaces. */
export function aeTitleProblem(v: string): string | undefined {
  if (v.length === 0) return 'AE title must not be empty';
  if (v.length > 16) return `AE title must be at most 16 characters, this one has ${v.length}`;
  if (v.includes('\\')) return 'AE title must not contain a backslash';
  if (/[\x00-\x1f\x7f]/.test(v)) return 'AE title must not contain control characters';
  if (/[^\x20-\x7e]/.test(v)) return 'AE title must use only ASCII characters (DICOM default repertoire)';
  if (v.trim() === '') return 'AE title must not be all spaces';
  return undefined;
}

/** PS3.5 9.1: components of digits separated by '.', no leading zero in a component of more than one digit, at most 64 characters. */
export function uidProblem(v: string): string | undefined {
  if (v.length === 0) return 'UID must not be empty';
  if (v.length > 64) return `UID must be at most 64 characters, this one has ${v.length}`;
  if (/[^0-9.]/.test(v)) return 'UID may contain only digits and dots';
  const parts = v.split('.');
  if (parts.some((c) => c === '')) return 'UID must not have an empty component (leading, trailing or double dot)';
  const zero = parts.find((c) => c.length > 1 && c.startsWith('0'));
  if (zero) return `UID component '${zero}' must not have a leading zero`;
  return undefined;
}

/** An IPv4/IPv6 address, or a CIDR range of one, as node:net's BlockList accepts it. */
export function ipOrCidrProblem(v: string): string | undefined {
  const bad = `must be ${EXPECTED.ipOrCidr}`;
  const slash = v.indexOf('/');
  if (slash < 0) return isIP(v) ? undefined : bad;
  const [address, prefixText] = [v.slice(0, slash), v.slice(slash + 1)];
  const family = isIP(address);
  if (family === 0) return `CIDR range must start with an IP address ('${address}' is not one)`;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `CIDR prefix length after '/' must be 0 to ${max} for an IPv${family} address`;
  try {
    new BlockList().addSubnet(address, Number(prefixText), family === 4 ? 'ipv4' : 'ipv6');
  } catch (err) {
    return `${bad}: ${(err as Error).message}`;
  }
  return undefined;
}
