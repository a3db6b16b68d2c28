-- Issue 17: the shared outbound queue, its deliveries, the nodes and the cluster-wide association slots.

-- Each router node: its heartbeat, and where its spool folder is (storage: shared reads it from there).
CREATE TABLE nodes (
  name          text PRIMARY KEY,
  spool_dir     text NOT NULL,
  storage       text NOT NULL CHECK (storage IN ('shared', 'local')),
  pid           integer NOT NULL,
  started_at    timestamptz NOT NULL,
  heartbeat_at  timestamptz NOT NULL,
  degraded_since timestamptz
);

-- One row per forward decision, published from a node's local outbox (origin_node, origin_id: idempotent).
-- `node` + `path`: the node whose spool holds the instance file, and the file relative to that spool.
-- Delivered rows stay a while as state 'done', so a republish after a crash is recognised and not sent again.
CREATE TABLE queue_items (
  id              bigserial PRIMARY KEY,
  origin_node     text NOT NULL,
  origin_id       text NOT NULL,
  peer            text NOT NULL,
  series_uid      text NOT NULL,
  sop_uid         text NOT NULL,
  node            text NOT NULL,
  path            text NOT NULL,
  item            jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead', 'done')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_owner     text,
  lease_until     timestamptz,
  last_status     integer,
  last_error      text,
  dead_reason     text,
  enqueued_at     timestamptz NOT NULL DEFAULT now(),
  done_at         timestamptz,
  UNIQUE (origin_node, origin_id)
);
-- Claims: the head pending item of each (peer, series), in id order.
CREATE INDEX queue_items_pending ON queue_items (peer, series_uid, id) WHERE state = 'pending';
CREATE INDEX queue_items_peer_due ON queue_items (peer, id) WHERE state = 'pending';
CREATE INDEX queue_items_lease ON queue_items (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX queue_items_done ON queue_items (done_at) WHERE state = 'done';

-- What each destination confirmed; count > 1: the instance reached that peer more than once (a duplicate,
-- e.g. resent after the node that sent it died before recording the delivery).
CREATE TABLE deliveries (
  sop_uid     text NOT NULL,
  peer        text NOT NULL,
  status      integer NOT NULL,
  at          timestamptz NOT NULL,
  item_id     bigint NOT NULL,
  rule        text NOT NULL,
  node        text NOT NULL,
  count       integer NOT NULL,
  PRIMARY KEY (sop_uid, peer)
);

-- peers[].maxAssociations across the cluster: one row per slot, held with a lease by the node using it.
CREATE TABLE peer_slots (
  peer        text NOT NULL,
  slot        integer NOT NULL,
  lease_owner text,
  lease_until timestamptz,
  PRIMARY KEY (peer, slot)
);
