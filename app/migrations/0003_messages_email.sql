-- Messages: per-tenant SMTP settings for the email channel.
CREATE TABLE messages_smtp_settings (
    tenant_id    text PRIMARY KEY,
    host         text    NOT NULL,
    port         integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls_mode     text    NOT NULL CHECK (tls_mode IN ('none', 'starttls', 'smtps')),
    username     text,
    password     text,
    from_address text    NOT NULL,
    from_name    text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE messages_smtp_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages_smtp_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON messages_smtp_settings
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
