import test from 'ava';
import fc from 'fast-check';
import { wildcardRegex } from '../../protocol/wildcard.ts';

test('* is any run (also none), ? exactly one character, the whole value must match', (t) => {
  t.true(wildcardRegex('CHEST*').test('CHEST ROUTINE'));
  t.true(wildcardRegex('CHEST*').test('CHEST'));
  t.true(wildcardRegex('*ROUT?NE').test('CHEST ROUTINE'));
  t.false(wildcardRegex('CHEST?').test('CHEST'));
  t.false(wildcardRegex('CHEST').test('CHEST ROUTINE'), 'whole value');
  t.true(wildcardRegex('A*').test('A\nB'), '* spans line breaks');
});

test('every other character is literal, regex syntax included', (t) => {
  t.true(wildcardRegex('a(b)[c]$').test('a(b)[c]$'));
  t.true(wildcardRegex('^.+|{1}\\').test('^.+|{1}\\'));
  t.false(wildcardRegex('1.2*').test('1x2.3'), "'.' is literal");
  fc.assert(fc.property(fc.string(), (s) => {
    const literal = s.replace(/[*?]/g, '');
    return wildcardRegex(literal).test(literal) && wildcardRegex('*').test(s);
  }));
});

test('a pattern gives the same answer after the bounded cache has been emptied', (t) => {
  const first = wildcardRegex('DOE^J*');
  for (let i = 0; i < 1500; i++) wildcardRegex(`P${i}*`);
  t.true(wildcardRegex('DOE^J*').test('DOE^JOHN'));
  t.not(wildcardRegex('DOE^J*'), first, 'the cache was emptied and the pattern compiled again');
});
