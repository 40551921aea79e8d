-- Approvals: an engine step's event-log entry carries the step's key, so a step retried after a
-- crash or a failed attempt logs nothing twice (entries written by requests keep no key).
ALTER TABLE approval_events ADD COLUMN step_key text;
CREATE UNIQUE INDEX approval_events_once ON approval_events (tenant_id, instance_id, step_key)
    WHERE step_key IS NOT NULL;
