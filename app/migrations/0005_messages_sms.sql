-- Messages: per-tenant SMS gateway settings (an HTTP provider with a signature name and a
-- template id, as Chinese SMS gateways require).
CREATE TABLE messages_sms_settings (
    tenant_id   text PRIMARY KEY,
    endpoint    text NOT NULL CHECK (endpoint ~ '^https?://'),
    api_key     text,
    sign_name   text NOT NULL,
    template_id text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE messages_sms_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages_sms_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages_sms_settings
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
