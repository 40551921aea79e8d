-- Electronic records, second part: the public keys that verify seals after the server key
-- rotates, attachments kept by content hash, and sealed archive packages.

-- Each tenant's copy of every public key that sealed one of its signatures, written in the
-- signing transaction (and audited), so a rotated key still verifies what it sealed.
CREATE TABLE record_seal_keys (
    tenant_id text NOT NULL,
    key_id text NOT NULL,
    public_key text NOT NULL,
    first_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key_id)
);
CREATE TRIGGER record_seal_keys_append_only BEFORE UPDATE OR DELETE ON record_seal_keys
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();

-- Attachment bytes, once per tenant and SHA-256. A version names its attachments inside its
-- content (so the content hash, and every signature, covers them); the link table below says
-- which versions use which bytes.
CREATE TABLE record_attachments (
    tenant_id text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type text NOT NULL,
    size bigint NOT NULL,
    content bytea NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);
CREATE TRIGGER record_attachments_immutable BEFORE UPDATE ON record_attachments
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();

CREATE TABLE record_version_attachments (
    tenant_id text NOT NULL,
    record_id bigint NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (tenant_id, record_id, version, name),
    FOREIGN KEY (record_id, version) REFERENCES record_versions (record_id, version),
    FOREIGN KEY (tenant_id, sha256) REFERENCES record_attachments (tenant_id, sha256)
);
CREATE INDEX record_version_attachments_by_hash ON record_version_attachments (tenant_id, sha256);
CREATE TRIGGER record_version_attachments_immutable BEFORE UPDATE ON record_version_attachments
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();
CREATE TRIGGER record_version_attachments_purge_only BEFORE DELETE ON record_version_attachments
    FOR EACH ROW EXECUTE FUNCTION records_purge_only();

-- The archive package of an archived record: record, versions, signatures, trail and
-- attachment hashes as canonical JSON, its SHA-256, sealed with the server key.
CREATE TABLE record_archives (
    tenant_id text NOT NULL,
    record_id bigint NOT NULL,
    package jsonb NOT NULL,
    package_hash text NOT NULL,
    key_id text NOT NULL,
    seal text NOT NULL,
    archived_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, record_id)
);
CREATE TRIGGER record_archives_immutable BEFORE UPDATE ON record_archives
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();
CREATE TRIGGER record_archives_purge_only BEFORE DELETE ON record_archives
    FOR EACH ROW EXECUTE FUNCTION records_purge_only();

-- Superseded and obsolete records are archived this many days after their last change (the
-- nightly function); null: only when an administrator asks.
ALTER TABLE record_settings ADD COLUMN archive_after_days integer;
-- When an archive was asked for (the function archives what is asked and not yet archived).
ALTER TABLE records ADD COLUMN archive_requested_at timestamptz;

ALTER TABLE record_seal_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_seal_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_seal_keys
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_attachments
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_version_attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_version_attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_version_attachments
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_archives ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_archives FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_archives
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
-- The nightly archive function finds due records across tenants in this scope.
CREATE POLICY archive_scan ON records FOR SELECT
    USING (current_setting('app.scope', true) = 'records_archiver');
CREATE POLICY archive_scan ON record_settings FOR SELECT
    USING (current_setting('app.scope', true) = 'records_archiver');
