-- Issue 17: which instance lives on which node (the instance directory). A node publishes each instance it
-- stored (after that instance's queue items), so a storage commitment request received by another node
-- finds it and how far its delivery is.
CREATE TABLE instances (
  sop_uid        text NOT NULL,
  node           text NOT NULL,
  sop_class_uid  text NOT NULL,
  study_uid      text NOT NULL,
  series_uid     text NOT NULL,
  path           text NOT NULL,
  received_at    timestamptz NOT NULL,
  PRIMARY KEY (sop_uid, node)
);
CREATE INDEX instances_study ON instances (study_uid);
CREATE INDEX queue_items_sop ON queue_items (sop_uid) WHERE state IN ('pending', 'dead');
