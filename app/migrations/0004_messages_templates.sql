-- Messages: versioned templates per tenant, key, channel and locale.
CREATE TABLE message_templates (
    id         bigserial PRIMARY KEY,
    tenant_id  text        NOT NULL,
    key        text        NOT NULL,
    channel    text        NOT NULL CHECK (channel IN ('in_app', 'email', 'sms', 'push')),
    locale     text        NOT NULL,
    version    integer     NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key, channel, locale, version)
);
ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_templates
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
