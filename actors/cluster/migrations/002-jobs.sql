-- Issue 17, the rest: prefetch jobs and completion groups shared by the cluster's nodes.

-- A study triggers prefetch once cluster-wide: the first node to publish a job for it owns the trigger,
-- a job another node planned for the same study is dropped at its publish.
CREATE TABLE prefetch_studies (
  study_uid    text PRIMARY KEY,
  origin_node  text NOT NULL,
  at           timestamptz NOT NULL DEFAULT now()
);

-- One row per prefetch job (its id is made unique by the planning node), published from that node's
-- outbox; `record` is the job's last recorded step (actors/jobs/prefetch.ts PrefetchJobRecord), written
-- by whichever node holds the lease, so another node resumes it from there when that node dies.
CREATE TABLE prefetch_jobs (
  id           text PRIMARY KEY,
  origin_node  text NOT NULL,
  study_uid    text NOT NULL,
  state        text NOT NULL,
  record       jsonb NOT NULL,
  lease_owner  text,
  lease_until  timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prefetch_jobs_open ON prefetch_jobs (created_at) WHERE state NOT IN ('done', 'partiallyFailed', 'failed');

-- A prior moved to a destination (dedupHours), whichever node's job moved it.
CREATE TABLE prefetch_moved (
  destination  text NOT NULL,
  study_uid    text NOT NULL,
  at           timestamptz NOT NULL,
  job          text NOT NULL,
  PRIMARY KEY (destination, study_uid)
);

-- A completion group ([rule, study(, series)]), its members counted from every node; fires_at: the quiet
-- deadline (last member + quietSeconds, no later than hard_at = opened_at + maxWaitSeconds). Fired by the
-- node holding its lease, in ONE transaction that releases its held queue items.
CREATE TABLE completion_groups (
  id           text PRIMARY KEY,
  rule         text NOT NULL,
  study_uid    text NOT NULL,
  series_uid   text,
  spec         jsonb NOT NULL,
  series       jsonb NOT NULL DEFAULT '{}',
  instances    integer NOT NULL DEFAULT 0,
  calling_aes  jsonb NOT NULL DEFAULT '[]',
  state        text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'fired')),
  first_at     timestamptz NOT NULL,
  opened_at    timestamptz NOT NULL,
  last_at      timestamptz NOT NULL,
  fires_at     timestamptz NOT NULL,
  hard_at      timestamptz NOT NULL,
  lease_owner  text,
  lease_until  timestamptz,
  fired        jsonb,
  late         integer NOT NULL DEFAULT 0
);
CREATE INDEX completion_groups_waiting ON completion_groups (fires_at) WHERE state = 'waiting';

CREATE TABLE completion_members (
  group_id     text NOT NULL REFERENCES completion_groups (id) ON DELETE CASCADE,
  sop_uid      text NOT NULL,
  series_uid   text NOT NULL,
  node         text NOT NULL,
  PRIMARY KEY (group_id, sop_uid)
);

-- A queue item held for a waiting group is not claimed until the group fires (held_for cleared in the
-- firing transaction); 'dropped': the group fired without forwarding (whenComplete did not hold) or a late
-- instance its afterFired policy does not send.
ALTER TABLE queue_items ADD COLUMN held_for text;
ALTER TABLE queue_items DROP CONSTRAINT queue_items_state_check;
ALTER TABLE queue_items ADD CONSTRAINT queue_items_state_check CHECK (state IN ('pending', 'dead', 'done', 'dropped'));
CREATE INDEX queue_items_held ON queue_items (held_for) WHERE held_for IS NOT NULL;
