// Turns for peers that take ONE association at a time (peers[].exclusive: Canon Virtual Place, the
// SDCC storage SCP; ../shared/conformance 000 and 002): whatever the router opens to such a peer —
// a forwarding association, a prefetch check's C-FIND — waits until the previous one has closed.
// Other peers pass straight through.
export type Release = () => void;

export class PeerGates {
  readonly #exclusive: ReadonlySet<string>;
  /** Per exclusive peer: resolves when the current holder releases (a chain of turns). */
  readonly #tail = new Map<string, Promise<void>>();

  constructor(exclusivePeers: Iterable<string>) {
    this.#exclusive = new Set(exclusivePeers);
  }

  isExclusive(peer: string): boolean {
    return this.#exclusive.has(peer);
  }

  /** Waits for the peer's turn; the returned function ends it (calling it twice is harmless). */
  async acquire(peer: string): Promise<Release> {
    if (!this.#exclusive.has(peer)) return () => {};
    const previous = this.#tail.get(peer) ?? Promise.resolve();
    let end!: () => void;
    const mine = new Promise<void>((resolve) => (end = resolve));
    const tail = previous.then(() => mine);
    this.#tail.set(peer, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      end();
      if (this.#tail.get(peer) === tail) this.#tail.delete(peer);
    };
  }
}
