// peers[].maxAssociations across the whole cluster (issue 17): before a node opens an association to a
// peer it holds one of the peer's slots (table peer_slots) with a lease the heartbeat renews; a peer
// that takes one association at a time gets one from the whole cluster. No slot free: wait (the node's
// peer machine stays `connecting`), looking again every half second; stop() ends the waits.
import type { Pool } from 'pg';
import type { PeerGates, Release } from '../forward/peer-gate.ts';

const WAIT_MS = 500;

export class ClusterSlots {
  readonly #pool: Pool;
  readonly #node: string;
  readonly #leaseSeconds: number;
  readonly #max: (peer: string) => number;
  readonly #local: PeerGates;
  readonly #joined: () => boolean;
  readonly #created = new Set<string>();
  /** `${peer}#${slot}` held now: the heartbeat renews exactly these leases. */
  readonly #held = new Set<string>();
  #stopped = false;

  constructor(o: { pool: Pool; node: string; leaseSeconds: number; maxAssociations(peer: string): number; local: PeerGates; joined(): boolean }) {
    this.#joined = o.joined;
    this.#pool = o.pool;
    this.#node = o.node;
    this.#leaseSeconds = o.leaseSeconds;
    this.#max = o.maxAssociations;
    this.#local = o.local;
  }

  /** The node's own turn first (exclusive peers, shared with prefetch), then a cluster-wide slot. */
  async acquire(peer: string): Promise<Release> {
    const endLocal = await this.#local.acquire(peer);
    try {
      const slot = await this.#claim(peer);
      this.#held.add(`${peer}#${slot}`);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.#held.delete(`${peer}#${slot}`);
        endLocal();
        this.#pool.query('UPDATE peer_slots SET lease_owner = NULL, lease_until = NULL WHERE peer = $1 AND slot = $2 AND lease_owner = $3', [peer, slot, this.#node]).catch(() => {
          // Unreachable: the lease expires on its own.
        });
      };
    } catch (err) {
      endLocal();
      throw err;
    }
  }

  held(): string[] {
    return [...this.#held];
  }

  stop(): void {
    this.#stopped = true;
  }

  async #claim(peer: string): Promise<number> {
    const max = this.#max(peer);
    for (;;) {
      if (this.#stopped) throw new Error('the router is stopping: no association slot taken');
      // Not joined yet (schema unchecked): like a busy slot.
      if (this.#joined()) {
        try {
          if (!this.#created.has(peer)) {
            await this.#pool.query('INSERT INTO peer_slots (peer, slot) SELECT $1, g FROM generate_series(1, $2::int) g ON CONFLICT DO NOTHING', [peer, max]);
            this.#created.add(peer);
          }
          const { rows } = await this.#pool.query<{ slot: number }>(
            `UPDATE peer_slots SET lease_owner = $3, lease_until = now() + make_interval(secs => $4)
              WHERE (peer, slot) = (SELECT peer, slot FROM peer_slots
                                     WHERE peer = $1 AND slot <= $2 AND (lease_owner IS NULL OR lease_until < now())
                                     ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING slot`,
            [peer, max, this.#node, this.#leaseSeconds],
          );
          if (rows[0]) return rows[0].slot;
        } catch {
          // Unreachable: no slot can be known free; wait like a busy one.
        }
      }
      await new Promise((r) => setTimeout(r, WAIT_MS));
    }
  }
}
