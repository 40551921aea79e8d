-- Messages: one message, one delivery per (channel, recipient), and the in-app inbox.
CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    tenant_id       text        NOT NULL,
    sender_id       text        NOT NULL,
    subject         text        NOT NULL,
    body            text        NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE message_deliveries (
    id             bigserial PRIMARY KEY,
    tenant_id      text        NOT NULL,
    message_id     bigint      NOT NULL REFERENCES messages (id),
    channel        text        NOT NULL CHECK (channel IN ('in_app', 'email', 'sms', 'push')),
    recipient      text        NOT NULL,
    status         text        NOT NULL DEFAULT 'queued'
                               CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts       integer     NOT NULL DEFAULT 0,
    provider_reply text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, channel, recipient)
);
CREATE INDEX message_deliveries_by_status ON message_deliveries (tenant_id, status);

CREATE TABLE inbox_items (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    user_id     text        NOT NULL,
    message_id  bigint      NOT NULL REFERENCES messages (id),
    -- one inbox item per delivery, so a retried delivery step cannot add a second one
    delivery_id bigint      NOT NULL UNIQUE REFERENCES message_deliveries (id),
    subject     text        NOT NULL,
    body        text        NOT NULL,
    read_at     timestamptz,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_items_by_user ON inbox_items (tenant_id, user_id, created_at DESC);

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE message_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_deliveries
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE inbox_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox_items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON inbox_items
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
