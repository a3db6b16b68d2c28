// Who a TLS peer is, from its certificate: the subject DN (what routing rules see as `tlsSubject`)
// and the subjectAltName entries, and whether a calling AE title may be used with that certificate
// (listeners[].tls.aeTitleBindings). PS3.15 B leaves the significance of certificates to the site;
// this binding is the site's policy: an AE title is only believed when the certificate backs it.
import type { X509Certificate } from 'node:crypto';
import type { AeTitleBinding } from '../../config/config.ts';

export type SubjectAltName = { type: string; value: string };
export type CertificateIdentity = {
  /** e.g. 'C=DE, O=Hospital, CN=ct1' (the certificate's RDN order, RFC 4514 escapes kept). */
  subject: string;
  subjectAltNames: SubjectAltName[];
};

export function identityOf(cert: X509Certificate): CertificateIdentity {
  return { subject: cert.subject.split('\n').join(', '), subjectAltNames: parseSubjectAltNames(cert.subjectAltName ?? '') };
}

/** node's X509Certificate.subjectAltName ('DNS:a, IP Address:1.2.3.4, URI:"x,y"') as entries. */
export function parseSubjectAltNames(text: string): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  const re = /\s*([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    const raw = m[2].trim();
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    out.push({ type: normalizeSanType(m[1].trim()), value });
  }
  return out;
}

function normalizeSanType(t: string): string {
  const u = t.toUpperCase();
  if (u === 'IP ADDRESS' || u === 'IP') return 'IP';
  if (u === 'EMAIL') return 'EMAIL';
  return u;
}

/** A DN as a sorted list of 'TYPE=value' (type upper-cased, escapes undone), so order and spacing do not matter. */
export function dnComponents(dn: string): string[] {
  const text = dn.trim();
  // OpenSSL's old one-line form: /C=DE/O=Hospital/CN=ct1
  const parts = text.startsWith('/') ? text.slice(1).split('/') : splitUnescaped(text);
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq < 0) return p;
      return `${p.slice(0, eq).trim().toUpperCase()}=${unescape(p.slice(eq + 1).trim())}`;
    })
    .sort();
}

function splitUnescaped(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      cur += ch + text[++i];
    } else if (ch === ',' || ch === '\n') {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

export function sameDn(a: string, b: string): boolean {
  const [x, y] = [dnComponents(a), dnComponents(b)];
  return x.length === y.length && x.every((c, i) => c === y[i]);
}

/** 'DNS:ct1.example' matches that entry only; a bare 'ct1.example' matches an entry of any type with that value. */
export function sanMatches(pattern: string, names: SubjectAltName[]): boolean {
  const m = /^(DNS|IP|IP Address|URI|email):(.*)$/i.exec(pattern.trim());
  const type = m ? normalizeSanType(m[1]) : undefined;
  const value = (m ? m[2] : pattern).trim();
  const eq = (t: string, v: string) => (t === 'DNS' || t === 'EMAIL' ? v.toLowerCase() === value.toLowerCase() : v === value);
  return names.some((n) => (type === undefined || n.type === type) && eq(n.type, n.value));
}

export type BindingVerdict = { ok: true } | { ok: false; why: string };

/**
 * With bindings configured, a calling AE title must be listed and the certificate must match one of
 * its bindings (subject and/or SAN, each given one must hold). Without bindings, anything goes.
 */
export function checkAeTitleBinding(bindings: AeTitleBinding[], callingAeTitle: string, identity: CertificateIdentity | undefined): BindingVerdict {
  if (bindings.length === 0) return { ok: true };
  const mine = bindings.filter((b) => b.aeTitle === callingAeTitle);
  if (mine.length === 0) return { ok: false, why: `calling AE title '${callingAeTitle}' has no certificate binding on this listener` };
  if (!identity) return { ok: false, why: `calling AE title '${callingAeTitle}' is bound to a certificate, but the peer presented none` };
  const matches = mine.some((b) => (b.subject === undefined || sameDn(b.subject, identity.subject)) && (b.san === undefined || sanMatches(b.san, identity.subjectAltNames)));
  if (matches) return { ok: true };
  const expected = mine.map((b) => [b.subject && `subject '${b.subject}'`, b.san && `SAN '${b.san}'`].filter(Boolean).join(' and ')).join(' or ');
  return { ok: false, why: `certificate '${identity.subject}' does not match the binding of '${callingAeTitle}' (expected ${expected})` };
}
