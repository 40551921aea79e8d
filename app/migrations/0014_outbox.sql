-- The transactional outbox: events the app announces, written in the transaction that writes
-- what they announce, and relayed to Inngest (or the embedded executor) until accepted.
CREATE TABLE app_outbox (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    event_id text NOT NULL UNIQUE,
    name text NOT NULL,
    data jsonb NOT NULL,
    ts bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    sent_at timestamptz
);
CREATE INDEX app_outbox_due ON app_outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX app_outbox_sent ON app_outbox (sent_at) WHERE sent_at IS NOT NULL;

ALTER TABLE app_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE app_outbox FORCE ROW LEVEL SECURITY;
-- A tenant's transaction adds its own events only; the relay (scope 'outbox') reads and marks
-- every tenant's.
CREATE POLICY tenant_isolation ON app_outbox
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
CREATE POLICY relay ON app_outbox
    USING (current_setting('app.scope', true) = 'outbox');
