-- A planner's verdict on an alert: confirmed (a true positive: the machine did fail or was
-- about to) or rejected (a false positive), optionally against the maintenance event
-- (ingestion's log) that shows it, with who, when and why. The feedback models learn from.
-- One row per judged alert, beside the alert rather than in it: the alert row is rewritten
-- by every scoring batch, a verdict once.

SET LOCAL ROLE aurumai_prediction;

CREATE TABLE prediction.alert_feedback (
    alert_id bigint      PRIMARY KEY REFERENCES prediction.alerts (id) ON DELETE CASCADE,
    verdict  text        NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
    event_id bigint,
    given_by text        NOT NULL,
    given_at timestamptz NOT NULL,
    note     text
);

RESET ROLE;
