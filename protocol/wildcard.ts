// DICOM wildcard matching (PS3.4 C.2.2.2.4), shared by Q/R matching and the routing rules.

// Patterns come from the network (C-FIND identifiers) as well as from rule files, so the cache is bounded.
const MAX_CACHED = 1000;
const cache = new Map<string, RegExp>();

/** '*' any run of characters (also none), '?' exactly one; every other character is literal and the whole value must match. */
export function wildcardRegex(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
    re = new RegExp(`^${body}$`, 's');
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}
