-- Issue 17: storage commitment requests shared by the cluster's nodes. A request is recorded by the node
-- that received the N-ACTION (before its response) and published here with that node holding its lease;
-- when the node dies, another node adopts it once the lease expires, decides it and sends the report.
CREATE TABLE commitment_requests (
  id               text PRIMARY KEY,
  origin_node      text NOT NULL,
  transaction_uid  text NOT NULL,
  state            text NOT NULL CHECK (state IN ('waiting', 'reporting', 'reported')),
  record           jsonb NOT NULL,
  lease_owner      text,
  lease_until      timestamptz,
  reported_by      text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX commitment_requests_open ON commitment_requests (lease_until) WHERE state <> 'reported';
