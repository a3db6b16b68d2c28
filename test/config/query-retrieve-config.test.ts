import test from 'ava';
import { ConfigError, parseConfig } from '../../config/config.ts';

const PEERS = 'peers:\n  - { name: ARCH1, aeTitle: ARCH1, host: 127.0.0.1, port: 104 }\n  - { aeTitle: ARCH2, host: 127.0.0.1, port: 105 }\n';
const listener = (qr: string) => `listeners:\n  - name: main\n    aeTitles: [ROUTER]\n${qr}`;

function problems(text: string): string[] {
  try {
    parseConfig(text, 'router.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

test('absent queryRetrieve: the listener has none (no Q/R contexts)', (t) => {
  const c = parseConfig(listener('') + PEERS, 'router.yaml');
  t.is(c.listeners[0].queryRetrieve, undefined);
});

test('sources name peers (by name, or AE title when unnamed) and local; move defaults to relay', (t) => {
  const c = parseConfig(listener('    queryRetrieve:\n      sources: [ARCH1, ARCH2, local]\n') + PEERS, 'router.yaml');
  t.deepEqual(c.listeners[0].queryRetrieve, { sources: ['ARCH1', 'ARCH2', 'local'], move: 'relay' });
  const r = parseConfig(listener('    queryRetrieve: { sources: [local], move: retrieve-through }\n') + PEERS, 'router.yaml');
  t.is(r.listeners[0].queryRetrieve?.move, 'retrieve-through');
});

test('an unknown source is located and named, with a guess', (t) => {
  const p = problems(listener('    queryRetrieve:\n      sources: [ARCH1, ARHC2]\n') + PEERS);
  t.deepEqual(p, [`router.yaml:5:24: listeners[0].queryRetrieve.sources[1]: must be 'local' or the name of a configured peer (got "ARHC2"; did you mean 'ARCH2'?; peers: ARCH1, ARCH2)`]);
});

test('a bad move mode, an empty source list and an unknown field are each located', (t) => {
  const p = problems(listener('    queryRetrieve:\n      sources: []\n      move: retrieve\n      cache: true\n') + PEERS);
  t.is(p.length, 3);
  t.regex(p[0], /^router\.yaml:5:16: listeners\[0\]\.queryRetrieve\.sources: must list at least 1 /);
  t.regex(p[1], /^router\.yaml:6:13: listeners\[0\]\.queryRetrieve\.move: must be one of 'retrieve-through', 'relay' \(got "retrieve"\)$/);
  t.is(p[2], "router.yaml:7:7: listeners[0].queryRetrieve.cache: unknown field 'cache' (known fields: sources, move)");
});

test('sources is required', (t) => {
  const p = problems(listener('    queryRetrieve: { move: relay }\n') + PEERS);
  t.is(p.length, 1);
  t.regex(p[0], /listeners\[0\]\.queryRetrieve\.sources: required field is missing/);
});
