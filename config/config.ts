// Router configuration: read a YAML file, validate it against router.schema.json (ajv) plus
// the checks a schema cannot express, apply defaults and resolve paths. Every problem names
// the file, line:column, the field and what was expected (DESIGN property 4).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BlockList, isIP } from 'node:net';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import schema from './router.schema.json' with { type: 'json' };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type TransferSyntaxPolicy = 'proposal-order' | 'prefer-explicit';
export type ListenerTimeouts = { artimSeconds: number; idleSeconds: number; dimseSeconds: number };
export type ListenerConfig = {
  name: string;
  aeTitles: string[]; // trimmed: leading/trailing spaces are not significant (PS3.5 6.2, AE)
  port: number;
  bind: string;
  acceptCallingAeTitles: string[]; // empty = any
  allowedSources: string[]; // IPs or CIDRs; empty = any
  sopClasses: 'default' | string[];
  transferSyntaxes: 'default' | string[];
  transferSyntaxPolicy: TransferSyntaxPolicy;
  maxPduLength: number;
  maxAssociations: number;
  timeouts: ListenerTimeouts;
};
export type RetryConfig = { attempts: number; initialBackoffSeconds: number; maxBackoffSeconds: number; jitter: number };
export type PeerConfig = {
  name: string; aeTitle: string; host: string; port: number; callingAeTitle: string; maxAssociations: number; maxPduLength: number;
  transferSyntaxes: 'default' | string[]; retry: RetryConfig; idleReleaseSeconds: number; timeouts: { connectSeconds: number; dimseSeconds: number };
};
export type RoutingConfig = { rulesDir: string; retentionHours: number };
export type RouterConfig = {
  storage: { dir: string; fsync: boolean }; // dir is absolute
  log: { level: LogLevel };
  listeners: ListenerConfig[];
  peers: PeerConfig[];
  routing: RoutingConfig;
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
  const semantic = semanticProblems(data);
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

function toRouterConfig(c: RouterConfig, file: string): RouterConfig {
  const trimAll = (xs: string[]) => xs.map((x) => x.trim());
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
    })),
    peers: c.peers.map((p) => ({
      name: p.name ?? p.aeTitle.trim(), aeTitle: p.aeTitle.trim(), host: p.host, port: p.port, callingAeTitle: p.callingAeTitle.trim(),
      maxAssociations: p.maxAssociations, maxPduLength: p.maxPduLength,
      transferSyntaxes: p.transferSyntaxes === 'default' ? 'default' : [...p.transferSyntaxes],
      retry: { ...p.retry }, idleReleaseSeconds: p.idleReleaseSeconds, timeouts: { ...p.timeouts },
    })),
    routing: { rulesDir: resolve(dirname(resolve(file)), c.routing.rulesDir), retentionHours: c.routing.retentionHours },
  };
}

// ---- problems before they are placed in the file ----

type Seg = string | number;
type RawProblem = { path: Seg[]; message: string; target: 'value' | 'key'; keyword?: string };
const STRING_RULES = new Set(['pattern', 'minLength', 'maxLength']);

function formatPath(path: Seg[]): string {
  return path.map((s, i) => typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? (i === 0 ? s : `.${s}`) : `[${JSON.stringify(s)}]`).join('');
}

/** line:column of the YAML node at `path` (its key for target 'key'), or of the nearest ancestor that exists. */
function locate(doc: Document, path: Seg[], target: 'value' | 'key'): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [i, seg] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      const keyStart = rangeStart(pair.key);
      if (i === path.length - 1 && target === 'key' && keyStart !== undefined) return keyStart;
      node = pair.value;
      // An empty value ("port:") has no useful place of its own: point at its key.
      offset = (isScalar(node) && node.value === null ? undefined : rangeStart(node)) ?? keyStart ?? offset;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null)?.range;
  return range ? range[0] : undefined;
}

// ---- schema validation and its messages ----

type SchemaObj = { [k: string]: any };
const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true });
const validate = ajv.compile(schema);
const definitions: SchemaObj = schema.definitions;

/** What a value matching a definition looks like, in words. */
const EXPECTED: Record<string, string> = {
  aeTitle: 'an AE title (1 to 16 characters, no backslash or control characters, not all spaces)',
  uid: 'a UID (numbers separated by dots without leading zeros, e.g. 1.2.840.10008.1.2.1, at most 64 characters)',
  uidList: 'a non-empty list of UIDs',
  ipAddress: 'an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1 or ::)',
  ipOrCidr: 'an IPv4 or IPv6 address or CIDR range (e.g. 192.168.1.20, 10.0.0.0/8 or fd00::/8)',
  listener: 'a map of listener fields (name, aeTitles, port, ...)',
  peer: 'a map with aeTitle, host and port',
};

function describe(s: SchemaObj | undefined): string {
  if (!s) return 'nothing here';
  const def = Object.keys(definitions).find((k) => definitions[k] === s || s.$ref === `#/definitions/${k}`);
  if (def && EXPECTED[def]) return EXPECTED[def];
  if (def && definitions[def] !== s) return describe(definitions[def]);
  if ('const' in s) return quote(s.const);
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(quote).join(', ')}`;
  if (Array.isArray(s.anyOf)) return s.anyOf.map((b: SchemaObj) => describe(b)).join(' or ');
  switch (s.type) {
    case 'integer':
    case 'number': {
      const noun = s.type === 'integer' ? 'an integer' : 'a number';
      if (s.minimum !== undefined && s.maximum !== undefined) return `${noun} from ${s.minimum} to ${s.maximum}`;
      const bounds = [
        s.minimum !== undefined ? `at least ${s.minimum}` : s.exclusiveMinimum !== undefined ? `greater than ${s.exclusiveMinimum}` : '',
        s.maximum !== undefined ? `at most ${s.maximum}` : '',
      ].filter(Boolean);
      return bounds.length ? `${noun} ${bounds.join(' and ')}` : noun;
    }
    case 'string':
      if (s.minLength > 0 && s.maxLength) return `a string of ${s.minLength} to ${s.maxLength} characters`;
      return s.minLength > 0 ? 'a non-empty string' : 'a string';
    case 'boolean': return 'true or false';
    case 'array': return s.minItems > 0 ? `a list of at least ${plural(s.minItems, itemNoun(s))}` : 'a list';
    case 'object': return 'a map of fields';
    default: return 'a valid value';
  }
}

/** What one item of a list schema is called. */
function itemNoun(list: SchemaObj): string {
  const ref = String(list.items?.$ref ?? '').replace('#/definitions/', '');
  return ({ aeTitle: 'AE title', uid: 'UID', ipOrCidr: 'address', listener: 'listener', peer: 'peer' } as Record<string, string>)[ref] ?? 'item';
}

function quote(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function got(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

function instancePath(pointer: string, data: unknown): Seg[] {
  const path: Seg[] = [];
  let here: any = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key: Seg = Array.isArray(here) ? Number(seg) : seg;
    path.push(key);
    here = here?.[key];
  }
  return path;
}

function schemaProblems(errors: ErrorObject[], data: unknown): RawProblem[] {
  const dropped = new Set<ErrorObject>();
  // anyOf ('default' or a list of UIDs): if the value has the shape of some branch, report that
  // branch's own errors; if it fits none, one message naming every allowed shape.
  errors.forEach((e, i) => {
    if (e.keyword !== 'anyOf') return;
    const within = errors.slice(0, i).filter((b) => !dropped.has(b) && (b.instancePath === e.instancePath || b.instancePath.startsWith(`${e.instancePath}/`)));
    const shape = within.filter((b) => b.instancePath === e.instancePath && ['type', 'const', 'enum'].includes(b.keyword));
    const fitsNoBranch = shape.length >= (e.schema as unknown[]).length;
    for (const b of fitsNoBranch ? within : shape) dropped.add(b);
    if (!fitsNoBranch) dropped.add(e);
  });
  return errors.filter((e) => !dropped.has(e)).map((e) => schemaProblem(e, instancePath(e.instancePath, data)));
}

function schemaProblem(e: ErrorObject, path: Seg[]): RawProblem {
  const parent = e.parentSchema as SchemaObj;
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const known = Object.keys(parent.properties ?? {});
      const guess = closest(p.additionalProperty, known);
      const hint = guess ? `did you mean '${guess}'?` : `known fields: ${known.join(', ')}`;
      return { path: [...path, p.additionalProperty], target: 'key', message: `unknown field '${p.additionalProperty}' (${hint})` };
    }
    case 'required':
      return { path: [...path, p.missingProperty], target: 'value', message: `required field is missing (expected ${describe(parent.properties?.[p.missingProperty])})` };
    case 'minItems':
      return { path, target: 'value', message: `must list at least ${plural(p.limit, itemNoun(parent))} (got ${got(e.data)})` };
    case 'uniqueItems':
      return { path: [...path, Math.max(p.i, p.j)], target: 'value', message: `duplicate of item ${Math.min(p.i, p.j)} (${got((e.data as unknown[])[p.i])})` };
    case 'minLength':
    case 'maxLength':
      return { path, target: 'value', keyword: e.keyword, message: `must be ${describe(parent)} (got ${got(e.data)}, ${plural(String(e.data).length, 'character')})` };
    default: {
      const options = e.keyword === 'enum' ? parent.enum : e.keyword === 'anyOf' ? parent.anyOf.filter((b: SchemaObj) => 'const' in b).map((b: SchemaObj) => b.const) : [];
      const guess = typeof e.data === 'string' ? closest(e.data, options.filter((o: unknown) => typeof o === 'string')) : undefined;
      const message = `must be ${describe(parent)} (got ${got(e.data)}${guess ? `; did you mean '${guess}'?` : ''})`;
      return { path, target: 'value', keyword: e.keyword, message: path.length === 0 ? `the file ${message}` : message };
    }
  }
}

/** The candidate closest to `word` if it is close enough to be a likely typo. */
function closest(word: string, candidates: string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_ ]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = norm(c) === norm(word) ? 0 : editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(word.length, best.length) / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

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
  });
  const peers = Array.isArray(root.peers) ? root.peers : [];
  const peerNames = new Map<string, number>();
  peers.forEach((p: unknown, i: number) => {
    if (!isObject(p)) return;
    check(['peers', i, 'aeTitle'], p.aeTitle, aeTitleProblem);
    check(['peers', i, 'callingAeTitle'], p.callingAeTitle, aeTitleProblem);
    check(['peers', i, 'host'], p.host, (v) => isIP(v) || HOSTNAME.test(v) ? undefined : 'must be a host name or an IP address');
    eachString(['peers', i, 'transferSyntaxes'], p.transferSyntaxes, uidProblem);
    const name = typeof p.name === 'string' ? p.name : typeof p.aeTitle === 'string' ? p.aeTitle.trim() : undefined;
    if (name !== undefined) {
      const first = peerNames.get(name);
      const at: Seg[] = ['peers', i, typeof p.name === 'string' ? 'name' : 'aeTitle'];
      if (first !== undefined) out.push({ path: at, target: 'value', message: `duplicate peer name '${name}' (also used by peers[${first}]); give one of them a distinct name` });
      else peerNames.set(name, i);
    }
    const retry = isObject(p.retry) ? p.retry : undefined;
    if (retry && typeof retry.initialBackoffSeconds === 'number' && typeof retry.maxBackoffSeconds === 'number' && retry.initialBackoffSeconds > retry.maxBackoffSeconds) {
      out.push({ path: ['peers', i, 'retry', 'maxBackoffSeconds'], target: 'value', message: `must be at least initialBackoffSeconds (${retry.initialBackoffSeconds})` });
    }
  });
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

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
