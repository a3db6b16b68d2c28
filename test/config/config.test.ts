import test from 'ava';
import type { ExecutionContext } from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, parseConfig } from '../../config/config.ts';
import type { ConfigProblem, ListenerConfig, RouterConfig } from '../../config/config.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const fixture = (name: string) => join('test/config/fixtures', name);
const load = (relative: string) => loadConfig(join(repo, relative));

const MINIMAL = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\n';

const DEFAULT_LISTENER: Omit<ListenerConfig, 'name' | 'aeTitles' | 'port'> = {
  bind: '0.0.0.0',
  acceptCallingAeTitles: [],
  allowedSources: [],
  sopClasses: 'default',
  transferSyntaxes: 'default',
  transferSyntaxPolicy: 'proposal-order',
  maxPduLength: 16384,
  maxAssociations: 50,
  timeouts: { artimSeconds: 30, idleSeconds: 120, dimseSeconds: 60 },
  rateLimit: { attempts: 100, perSeconds: 10 },
  storageCommitment: { enabled: false, commitWhen: 'delivered', report: 'same-association-first', timeoutHours: 24 },
};

function expected(file: string): RouterConfig {
  return {
    storage: { dir: resolve(dirname(resolve(file)), 'data'), fsync: true },
    log: { level: 'info' },
    listeners: [{ name: 'main', aeTitles: ['DICOM_ROUTER'], port: 11112, ...DEFAULT_LISTENER }],
    peers: [],
    routing: { rulesDir: resolve(dirname(resolve(file)), 'routing-rules'), retentionHours: 24 },
    audit: {},
    inspect: { enabled: false, bind: '127.0.0.1', port: 8080, showPhi: false },
    shutdown: { graceSeconds: 30 },
  };
}

/** Parses `text` (or loads a fixture), expects a ConfigError with a problem at `path`, and checks how it is reported. */
function problemAt(t: ExecutionContext, source: { text: string; file: string } | { fixture: string }, path: string, line: number, column: number): ConfigProblem {
  const file = 'fixture' in source ? fixture(source.fixture) : source.file;
  const error = t.throws(() => ('fixture' in source ? loadConfig(join(repo, file)) : parseConfig(source.text, file)), { instanceOf: ConfigError }) as ConfigError;
  const problem = error.problems.find((p) => p.path === path);
  if (!problem) return t.fail(`no problem at ${path}; got:\n${error.message}`) as never;
  t.is(problem.line, line, error.message);
  t.is(problem.column, column, error.message);
  const shownFile = 'fixture' in source ? join(repo, file) : file;
  t.is(error.file, shownFile);
  const prefix = path ? `${shownFile}:${line}:${column}: ${path}: ` : `${shownFile}:${line}:${column}: `;
  t.true(error.message.split('\n').some((l) => l.startsWith(prefix)), `expected a line starting "${prefix}" in:\n${error.message}`);
  return problem;
}

const withListener = (fields: string) => `listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\n${fields}`;

test('config/router.yaml loads with the documented defaults', (t) => {
  const file = join(repo, 'config/router.yaml');
  // The one difference from the built-in defaults: `npm start` keeps its data in the repo's data/.
  t.deepEqual(loadConfig(file), {
    ...expected(file),
    storage: { dir: join(repo, 'data'), fsync: true },
    routing: { rulesDir: join(repo, 'routing-rules'), retentionHours: 24 },
    // `npm start` runs the inspector (loopback only).
    inspect: { enabled: true, bind: '127.0.0.1', port: 8080, showPhi: false },
  });
  t.regex(readFileSync(file, 'utf8'), /^# yaml-language-server: \$schema=\.\/router\.schema\.json$/m);
});

test('a minimal file gets every default', (t) => {
  t.deepEqual(parseConfig(MINIMAL, '/etc/router/router.yaml'), expected('/etc/router/router.yaml'));
  // and the shipped config spells out exactly those defaults (but for where its data lives)
  const shipped = load('config/router.yaml');
  t.deepEqual(parseConfig(MINIMAL, 'config/router.yaml'), {
    ...shipped,
    storage: { ...shipped.storage, dir: resolve('config/data') },
    routing: { ...shipped.routing, rulesDir: resolve('config/routing-rules') },
    inspect: { ...shipped.inspect, enabled: false },
  });
});

test('the JSON Schema documents every field and its defaults', (t) => {
  const schema = JSON.parse(readFileSync(join(repo, 'config/router.schema.json'), 'utf8'));
  t.is(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  const listener = schema.definitions.listener.properties;
  for (const [name, field] of Object.entries<{ description?: string }>(listener)) t.truthy(field.description, `listener.${name} has a description`);
  for (const [name, value] of Object.entries(DEFAULT_LISTENER)) {
    if (name !== 'timeouts' && name !== 'rateLimit' && name !== 'storageCommitment') t.deepEqual(listener[name].default, value, `default of ${name}`);
  }
  t.is(listener.timeouts.properties.idleSeconds.default, 120);
  t.is(listener.rateLimit.properties.attempts.default, 100);
  t.is(schema.definitions.storageCommitment.properties.commitWhen.default, 'delivered');
  t.is(schema.properties.storage.properties.dir.default, './data');
});

test('relative storage.dir resolves against the config file, absolute stays', (t) => {
  const config = load(fixture('relative-storage.yaml'));
  t.is(config.storage.dir, resolve(repo, 'test/config/spool-here'));
  t.is(parseConfig('storage: { dir: /var/lib/router }\n' + MINIMAL, 'x/y.yaml').storage.dir, '/var/lib/router');
});

test('values given are kept: lists of UIDs, trimmed AE titles, peers', (t) => {
  const config = parseConfig(withListener(
    '    sopClasses: [1.2.840.10008.1.1, 1.2.840.10008.5.1.4.1.1.2]\n' +
    '    transferSyntaxes: [1.2.840.10008.1.2.1]\n' +
    '    acceptCallingAeTitles: [" MODALITY "]\n' +
    '    allowedSources: [127.0.0.1, 10.0.0.0/8, "::1", "fd00::/8"]\n' +
    '    bind: "::"\n' +
    '    transferSyntaxPolicy: prefer-explicit\n' +
    '    timeouts: { artimSeconds: 0.5 }\n',
  ) + 'peers:\n  - { aeTitle: ARCHIVE, host: pacs.local, port: 104 }\n  - { aeTitle: WS, host: 127.0.0.1, port: 4242 }\n', 'c.yaml');
  const l = config.listeners[0];
  t.deepEqual(l.sopClasses, ['1.2.840.10008.1.1', '1.2.840.10008.5.1.4.1.1.2']);
  t.deepEqual(l.transferSyntaxes, ['1.2.840.10008.1.2.1']);
  t.deepEqual(l.acceptCallingAeTitles, ['MODALITY']);
  t.deepEqual(l.allowedSources, ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']);
  t.is(l.bind, '::');
  t.is(l.transferSyntaxPolicy, 'prefer-explicit');
  t.deepEqual(l.timeouts, { artimSeconds: 0.5, idleSeconds: 120, dimseSeconds: 60 });
  const peerDefaults = {
    callingAeTitle: 'DICOM_ROUTER', maxAssociations: 1, maxPduLength: 16384, transferSyntaxes: 'default', idleReleaseSeconds: 2, duplicates: 'always',
    exclusive: false, statusOverrides: {}, storageCommitment: { enabled: false, batch: 500, waitHours: 24 },
    retry: { attempts: 10, initialBackoffSeconds: 5, maxBackoffSeconds: 600, jitter: 0.2 }, timeouts: { connectSeconds: 10, dimseSeconds: 60 },
  };
  t.deepEqual(config.peers, [
    { name: 'ARCHIVE', aeTitle: 'ARCHIVE', host: 'pacs.local', port: 104, ...peerDefaults },
    { name: 'WS', aeTitle: 'WS', host: '127.0.0.1', port: 4242, ...peerDefaults },
  ]);
});

test('peers: names default to the AE title and must be unique; backoff bounds are ordered', (t) => {
  const text = `${MINIMAL}peers:
  - { aeTitle: PACS, host: 127.0.0.1, port: 104 }
  - { aeTitle: PACS, host: 127.0.0.2, port: 104 }
  - { name: ws, aeTitle: WS, host: 127.0.0.1, port: 105, retry: { initialBackoffSeconds: 60, maxBackoffSeconds: 10 }, transferSyntaxes: ['1.2.840.10008.1.2'] }
`;
  const err = t.throws(() => parseConfig(text, 'p.yaml'), { instanceOf: ConfigError })!;
  t.regex(err.message, /p\.yaml:\d+:\d+: peers\[1\]\.aeTitle: duplicate peer name 'PACS' \(also used by peers\[0\]\)/);
  t.regex(err.message, /peers\[2\]\.retry\.maxBackoffSeconds: must be at least initialBackoffSeconds \(60\)/);
});

test('YAML syntax error is reported with line:column', (t) => {
  const p = problemAt(t, { fixture: 'syntax-error.yaml' }, '', 5, 5);
  t.regex(p.message, /^YAML syntax error: /);
  const dup = problemAt(t, { text: withListener('    port: 104\n'), file: 'dup.yaml' }, '', 5, 5);
  t.regex(dup.message, /unique/);
});

test('wrong type names the field and the expected type', (t) => {
  const p = problemAt(t, { text: 'listeners:\n  - name: main\n    aeTitles: [X]\n    port: "11112"\n', file: 'config/router.yaml' }, 'listeners[0].port', 4, 11);
  t.is(p.message, 'must be an integer from 1 to 65535 (got "11112")');
  t.is(problemAt(t, { text: 'storage: { fsync: maybe }\n' + MINIMAL, file: 'f.yaml' }, 'storage.fsync', 1, 19).message, 'must be true or false (got "maybe")');
  t.regex(problemAt(t, { text: '- a\n- b\n', file: 'f.yaml' }, '', 1, 1).message, /must be a map of fields \(got a list\)/);
});

test('out-of-range port', (t) => {
  const text = 'listeners:\n  - name: main\n    aeTitles: [X]\n    port: 70000\n';
  problemAt(t, { text, file: 'config/router.yaml' }, 'listeners[0].port', 4, 11);
  t.throws(() => parseConfig(text, 'config/router.yaml'), {
    message: 'config/router.yaml:4:11: listeners[0].port: must be an integer from 1 to 65535 (got 70000)',
  });
  t.regex(problemAt(t, { text: withListener('    maxPduLength: 1024\n'), file: 'f.yaml' }, 'listeners[0].maxPduLength', 5, 19).message, /from 4096 to 4194304 \(got 1024\)/);
});

test('unknown field is named, with a suggestion when close', (t) => {
  const p = problemAt(t, { fixture: 'unknown-field.yaml' }, 'listeners[0].maxPduLenght', 5, 5);
  t.is(p.message, "unknown field 'maxPduLenght' (did you mean 'maxPduLength'?)");
  t.regex(problemAt(t, { text: 'colour: red\n' + MINIMAL, file: 'f.yaml' }, 'colour', 1, 1).message, /unknown field 'colour' \(known fields: storage, log, listeners, peers, routing, [a-z, ]+\)/);
  t.regex(problemAt(t, { text: 'storage: { fsnyc: true }\n' + MINIMAL, file: 'f.yaml' }, 'storage.fsnyc', 1, 12).message, /did you mean 'fsync'/);
});

test('bad enum lists the allowed values', (t) => {
  const p = problemAt(t, { text: withListener('    transferSyntaxPolicy: prefer_explicit\n'), file: 'f.yaml' }, 'listeners[0].transferSyntaxPolicy', 5, 27);
  t.is(p.message, "must be one of 'proposal-order', 'prefer-explicit' (got \"prefer_explicit\"; did you mean 'prefer-explicit'?)");
  t.regex(problemAt(t, { text: 'log: { level: loud }\n' + MINIMAL, file: 'f.yaml' }, 'log.level', 1, 15).message, /one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'/);
  t.regex(problemAt(t, { text: withListener('    sopClasses: defualt\n'), file: 'f.yaml' }, 'listeners[0].sopClasses', 5, 17).message, /must be 'default' or a non-empty list of UIDs \(got "defualt"; did you mean 'default'\?\)/);
});

test('bad CIDR or IP address', (t) => {
  const text = withListener('    allowedSources: [10.0.0.0/8, 10.0.0.0/33, 300.1.1.1, "fd00::/129"]\n    bind: localhost\n');
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].allowedSources[1]', 5, 34).message, /prefix length .* 0 to 32/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].allowedSources[2]', 5, 47).message, /IPv4 or IPv6 address or CIDR/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].allowedSources[3]', 5, 58).message, /0 to 128/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].bind', 6, 11).message, /IPv4 or IPv6 address.*\(got "localhost"\)/);
});

test('bad AE titles', (t) => {
  const text = withListener('    acceptCallingAeTitles: ["A\\\\B", THIS_TITLE_IS_TOO_LONG, "   ", "TAB\\t", ""]\n');
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].acceptCallingAeTitles[0]', 5, 29).message, /backslash/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].acceptCallingAeTitles[1]', 5, 37).message, /at most 16 characters, this one has 22/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].acceptCallingAeTitles[2]', 5, 61).message, /all spaces/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].acceptCallingAeTitles[3]', 5, 68).message, /control characters/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].acceptCallingAeTitles[4]', 5, 77).message, /must not be empty/);
  // one message per bad value: the schema's own pattern error is not repeated
  const error = t.throws(() => parseConfig(text, 'f.yaml'), { instanceOf: ConfigError }) as ConfigError;
  t.is(error.problems.length, 5, error.message);
  t.regex(problemAt(t, { text: 'listeners:\n  - name: main\n    aeTitles: [ÄRZTE]\n    port: 1\n', file: 'f.yaml' }, 'listeners[0].aeTitles[0]', 3, 16).message, /ASCII/);
});

test('bad UIDs', (t) => {
  const text = withListener('    sopClasses: [1.2.840.10008.1.1, 1.2.840.01, 1.2.x, 1..2]\n    transferSyntaxes: ["1.2.840.10008.1.2.1.99999999999999999999999999999999999999999999999999"]\n');
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].sopClasses[1]', 5, 37).message, /component '01' must not have a leading zero/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].sopClasses[2]', 5, 49).message, /only digits and dots/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].sopClasses[3]', 5, 56).message, /empty component/);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'listeners[0].transferSyntaxes[0]', 6, 24).message, /at most 64 characters/);
  t.regex(problemAt(t, { text: withListener('    sopClasses: []\n'), file: 'f.yaml' }, 'listeners[0].sopClasses', 5, 17).message, /at least 1 UID/);
});

test('duplicate listener name', (t) => {
  const text = MINIMAL + '  - name: main\n    aeTitles: [OTHER]\n    port: 104\n';
  t.is(problemAt(t, { text, file: 'f.yaml' }, 'listeners[1].name', 5, 11).message, "duplicate listener name 'main' (also used by listeners[0])");
});

test('duplicate port on overlapping bind addresses', (t) => {
  const p = problemAt(t, { fixture: 'duplicate-port.yaml' }, 'listeners[1].port', 7, 11);
  t.is(p.message, 'port 11112 on 127.0.0.1 is already used by listeners[0] (bound to 0.0.0.0)');
  const two = (a: string, b: string) => `listeners:\n  - { name: a, aeTitles: [A], port: 4000, bind: "${a}" }\n  - { name: b, aeTitles: [B], port: 4000, bind: "${b}" }\n`;
  t.notThrows(() => parseConfig(two('127.0.0.1', '127.0.0.2'), 'f.yaml'));
  t.notThrows(() => parseConfig(two('0.0.0.0', '::1'), 'f.yaml'));
  for (const [a, b] of [['127.0.0.1', '127.0.0.1'], ['::', '127.0.0.1'], ['::1', '::']]) {
    problemAt(t, { text: two(a, b), file: 'f.yaml' }, 'listeners[1].port', 3, 37);
  }
});

test('missing listeners, empty listeners, missing required listener fields', (t) => {
  t.regex(problemAt(t, { text: 'log: { level: info }\n', file: 'f.yaml' }, 'listeners', 1, 1).message, /required field is missing \(expected a list of at least 1 listener\)/);
  problemAt(t, { text: '', file: 'empty.yaml' }, 'listeners', 1, 1);
  t.regex(problemAt(t, { text: 'listeners: []\n', file: 'f.yaml' }, 'listeners', 1, 12).message, /at least 1 listener \(got an empty list\)/);
  t.regex(problemAt(t, { text: 'listeners:\n  - name: a\n    port:\n', file: 'f.yaml' }, 'listeners[0].aeTitles', 2, 5).message, /required field is missing \(expected a list of at least 1 AE title\)/);
  t.regex(problemAt(t, { text: 'listeners:\n  - name: a\n    port:\n', file: 'f.yaml' }, 'listeners[0].port', 3, 5).message, /\(got an empty value\)/);
});

test('peers are validated', (t) => {
  const text = MINIMAL + 'peers:\n  - { aeTitle: "A\\\\B", host: "bad host", port: 0 }\n  - 5\n';
  problemAt(t, { text, file: 'f.yaml' }, 'peers[0].aeTitle', 6, 16);
  problemAt(t, { text, file: 'f.yaml' }, 'peers[0].host', 6, 30);
  problemAt(t, { text, file: 'f.yaml' }, 'peers[0].port', 6, 48);
  t.regex(problemAt(t, { text, file: 'f.yaml' }, 'peers[1]', 7, 5).message, /aeTitle, host and port/);
});

test('every problem in a file is reported at once, in file order, one per line', (t) => {
  const file = join(repo, fixture('many-errors.yaml'));
  const error = t.throws(() => loadConfig(file), { instanceOf: ConfigError }) as ConfigError;
  const lines = error.message.split('\n');
  t.is(lines.length, error.problems.length);
  t.true(lines.every((l) => l.startsWith(`${file}:`)));
  t.deepEqual(error.problems.map((p) => p.path), [
    'storage.fsync', 'log.level', 'listeners[0].aeTitles[1]', 'listeners[0].port', 'listeners[0].allowedSources[0]',
    'listeners[0].sopClasses[1]', 'listeners[0].transferSyntaxPolicy', 'listeners[1].name', 'peers[0].port', 'peers[0].prot',
  ]);
  t.regex(lines[8], /peers\[0\]\.port: required field is missing \(expected an integer from 1 to 65535\)/);
  t.regex(lines[9], /unknown field 'prot' \(did you mean 'port'\?\)/);
});

test('an unreadable file is a ConfigError naming it', (t) => {
  const error = t.throws(() => loadConfig('no/such/router.yaml'), { instanceOf: ConfigError }) as ConfigError;
  t.is(error.file, 'no/such/router.yaml');
  t.is(error.message, 'no/such/router.yaml: cannot read the config file: no such file');
});

test('property: ports 1..65535 load, others are rejected at the port', (t) => {
  fc.assert(fc.property(fc.integer({ min: -100000, max: 200000 }), (port) => {
    const text = `listeners:\n  - name: main\n    aeTitles: [X]\n    port: ${port}\n`;
    if (port >= 1 && port <= 65535) return parseConfig(text, 'p.yaml').listeners[0].port === port;
    try {
      parseConfig(text, 'p.yaml');
      return false;
    } catch (e) {
      return e instanceof ConfigError && e.problems.length === 1 && e.problems[0].path === 'listeners[0].port' && e.problems[0].line === 4;
    }
  }), { numRuns: 300 });
  t.pass();
});

test('property: AE titles of 1-16 printable non-backslash characters, not all spaces, are accepted', (t) => {
  const char = fc.integer({ min: 0x20, max: 0x7e }).filter((c) => c !== 0x5c).map((c) => String.fromCharCode(c));
  const title = fc.array(char, { minLength: 1, maxLength: 16 }).map((cs) => cs.join('')).filter((s) => s.trim() !== '');
  fc.assert(fc.property(title, (ae) => {
    const config = parseConfig(`listeners:\n  - name: main\n    aeTitles: [${JSON.stringify(ae)}]\n    port: 104\n`, 'p.yaml');
    return config.listeners[0].aeTitles[0] === ae.trim();
  }), { numRuns: 300 });
  t.pass();
});

test('peers: statusOverrides map 4-digit statuses to outcomes; exclusive peers take one association', (t) => {
  const ok = parseConfig(`${MINIMAL}peers:
  - { aeTitle: VP, host: 127.0.0.1, port: 104, exclusive: true, statusOverrides: { A702: delivered, "c001": dead, "0110": retry } }
`, 'p.yaml');
  t.true(ok.peers[0].exclusive);
  t.deepEqual(ok.peers[0].statusOverrides, { A702: 'delivered', C001: 'dead', '0110': 'retry' });

  const text = `${MINIMAL}peers:
  - aeTitle: VP
    host: 127.0.0.1
    port: 104
    exclusive: true
    maxAssociations: 2
    statusOverrides:
      0110: dead
      A7: retry
      A702: ignored
`;
  const err = t.throws(() => parseConfig(text, 'p.yaml'), { instanceOf: ConfigError })!;
  // YAML reads 0110 as the number 110: the message says to quote it.
  t.regex(err.message, /p\.yaml:12:7: peers\[0\]\.statusOverrides\["110"\]: a status must be 4 hexadecimal digits, e\.g\. A702 \(got '110'\); write it in quotes \('0110'\)/);
  t.regex(err.message, /p\.yaml:13:7: peers\[0\]\.statusOverrides\.A7: a status must be 4 hexadecimal digits/);
  t.regex(err.message, /peers\[0\]\.statusOverrides\.A702: must be one of 'delivered', 'retry', 'dead' \(got "ignored"\)/);
  t.regex(err.message, /p\.yaml:10:22: peers\[0\]\.maxAssociations: an exclusive peer takes one association at a time: maxAssociations must be 1 \(got 2\)/);
});

test('listeners: storageCommitment is validated at load, with the documented defaults', (t) => {
  const base = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\n';
  const on = parseConfig(`${base}    storageCommitment: { enabled: true, commitWhen: stored }\n`, 'router.yaml');
  t.deepEqual(on.listeners[0].storageCommitment, { enabled: true, commitWhen: 'stored', report: 'same-association-first', timeoutHours: 24 });
  const bad = t.throws(() => parseConfig(`${base}    storageCommitment: { enabled: true, commitWhen: deliverd, report: sometimes, timeoutHours: 0 }\n`, 'router.yaml'), { instanceOf: ConfigError });
  t.regex(bad!.message, /listeners\[0\]\.storageCommitment\.commitWhen: must be one of 'stored', 'delivered', 'committed-downstream' \(got "deliverd"; did you mean 'delivered'\?\)/);
  t.regex(bad!.message, /storageCommitment\.report: must be one of 'same-association-first', 'always-new-association'/);
  t.regex(bad!.message, /storageCommitment\.timeoutHours: must be a number greater than 0/);
  const downstream = parseConfig(`${base}    storageCommitment: { enabled: true, commitWhen: committed-downstream }\n`, 'router.yaml');
  t.is(downstream.listeners[0].storageCommitment.commitWhen, 'committed-downstream');
});

test('peers: storageCommitment (the router as SCU) is validated at load, with the documented defaults', (t) => {
  const base = 'listeners:\n  - name: main\n    aeTitles: [DICOM_ROUTER]\n    port: 11112\npeers:\n  - aeTitle: PACS\n    host: 127.0.0.1\n    port: 104\n';
  t.deepEqual(parseConfig(base, 'router.yaml').peers[0].storageCommitment, { enabled: false, batch: 500, waitHours: 24 });
  t.deepEqual(parseConfig(`${base}    storageCommitment: { enabled: true, batch: 50, waitHours: 2 }\n`, 'router.yaml').peers[0].storageCommitment, { enabled: true, batch: 50, waitHours: 2 });
  const bad = t.throws(() => parseConfig(`${base}    storageCommitment: { enabled: yes-please, batch: 0, waitHours: -1, wait: 3 }\n`, 'router.yaml'), { instanceOf: ConfigError })!;
  t.regex(bad.message, /router\.yaml:9:\d+: peers\[0\]\.storageCommitment\.enabled: must be/);
  t.regex(bad.message, /peers\[0\]\.storageCommitment\.batch: must be an integer/);
  t.regex(bad.message, /peers\[0\]\.storageCommitment\.waitHours: must be a number greater than 0/);
  t.regex(bad.message, /peers\[0\]\.storageCommitment\.wait: unknown field 'wait' \(known fields: enabled, batch, waitHours\)/);
});
