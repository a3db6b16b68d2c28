// The JSON Schema side of config validation: ajv with defaults, and its errors turned into
// messages an integrator reads ("must be an integer from 1 to 65535 (got 70000)", "did you mean
// 'requireClientCert'?"), each with the path of the value (or key) it is about.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import schema from './router.schema.json' with { type: 'json' };

import { instancePath } from './yaml-problems.ts';
import type { RawProblem } from './yaml-problems.ts';
import { SchemaWords } from './schema-words.ts';

type SchemaObj = { [k: string]: any };
const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true });
/** Validates and fills in defaults (useDefaults); errors in `validate.errors`. */
export const validate = ajv.compile(schema);
const definitions: SchemaObj = schema.definitions;

/** What a value matching a definition looks like, in words. */
export const EXPECTED: Record<string, string> = {
  aeTitle: 'an AE title (1 to 16 characters, no backslash or control characters, not all spaces)',
  uid: 'a UID (numbers separated by dots without leading zeros, e.g. 1.2.840.10008.1.2.1, at most 64 characters)',
  uidList: 'a non-empty list of UIDs',
  ipAddress: 'an IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1 or ::)',
  ipOrCidr: 'an IPv4 or IPv6 address or CIDR range (e.g. 192.168.1.20, 10.0.0.0/8 or fd00::/8)',
  listener: 'a map of listener fields (name, aeTitles, port, ...)',
  peer: 'a map with aeTitle, host and port',
  pemFile: 'the path of a PEM file',
  listenerTls: 'a map with profile, key, cert, ca (and requireClientCert, handshakeSeconds, aeTitleBindings)',
  peerTls: 'a map with profile and ca (and key, cert, serverName)',
  aeTitleBinding: 'a map with aeTitle and subject and/or san',
  storageCommitment: 'a map with enabled, commitWhen, report, timeoutHours',
  peerStorageCommitment: 'a map with enabled, batch, waitHours',
};

const words = new SchemaWords({
  definitions,
  expected: EXPECTED,
  itemNouns: { aeTitle: 'AE title', uid: 'UID', ipOrCidr: 'address', listener: 'listener', peer: 'peer', aeTitleBinding: 'binding' },
});

export function schemaProblems(errors: ErrorObject[], data: unknown): RawProblem[] {
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
  return errors.filter((e) => !dropped.has(e)).map((e) => words.problem(e, instancePath(e.instancePath, data)));
}
