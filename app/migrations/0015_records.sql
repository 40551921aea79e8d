-- Electronic records (21 CFR Part 11, EU GMP Annex 11): records with immutable versions,
-- sealed signatures, signing credentials, and an append-only audit trail with a per-tenant
-- hash chain.
CREATE TABLE records (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    type text NOT NULL,
    business_key text NOT NULL,
    title text NOT NULL,
    state text NOT NULL DEFAULT 'draft' CHECK (state IN
        ('draft', 'in_review', 'effective', 'superseded', 'obsolete', 'archived', 'deleted')),
    latest_version integer NOT NULL DEFAULT 1,
    state_reason text,
    retain_until timestamptz,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, type, business_key)
);
CREATE INDEX records_by_state ON records (tenant_id, state, id);

CREATE TABLE record_versions (
    tenant_id text NOT NULL,
    record_id bigint NOT NULL REFERENCES records (id),
    version integer NOT NULL,
    title text NOT NULL,
    content jsonb NOT NULL,
    canonicalization text NOT NULL,
    content_hash text NOT NULL,
    change_reason text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, version)
);

CREATE TABLE record_signatures (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    record_id bigint NOT NULL REFERENCES records (id),
    version integer NOT NULL,
    signer_id text NOT NULL,
    printed_name text NOT NULL,
    meaning text NOT NULL,
    reason text NOT NULL,
    signed_at timestamptz NOT NULL,
    content_hash text NOT NULL,
    key_id text NOT NULL,
    seal text NOT NULL,
    -- The workflow step that asked for it ('' for a direct signing): a retried step can never
    -- add a second signature.
    step_key text NOT NULL DEFAULT '',
    UNIQUE (tenant_id, record_id, version, signer_id, meaning, step_key),
    FOREIGN KEY (record_id, version) REFERENCES record_versions (record_id, version)
);

CREATE TABLE record_signing_credentials (
    tenant_id text NOT NULL,
    user_id text NOT NULL,
    printed_name text NOT NULL,
    password_hash text NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    session_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE record_settings (
    tenant_id text PRIMARY KEY,
    custom_meanings jsonb NOT NULL DEFAULT '[]',
    security_contacts jsonb NOT NULL DEFAULT '[]',
    retention_days integer NOT NULL DEFAULT 3650
);

CREATE TABLE record_audit (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    seq bigint NOT NULL,
    record_id bigint,
    actor_id text NOT NULL,
    printed_name text NOT NULL,
    action text NOT NULL,
    old_value jsonb,
    new_value jsonb,
    reason text,
    at timestamptz NOT NULL,
    address text,
    user_agent text,
    prev_hash text NOT NULL,
    row_hash text NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX record_audit_by_record ON record_audit (tenant_id, record_id, seq);

-- What is written once is never changed: versions, signatures and the audit trail. The trigger
-- stops every role that has not disabled triggers; the revoke takes the statements away from the
-- app's own role as well. A superuser can still do anything: the hash chain makes it evident.
CREATE FUNCTION records_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER record_audit_append_only BEFORE UPDATE OR DELETE ON record_audit
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();
CREATE TRIGGER record_signatures_append_only BEFORE UPDATE ON record_signatures
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();
CREATE TRIGGER record_versions_immutable BEFORE UPDATE ON record_versions
    FOR EACH ROW EXECUTE FUNCTION records_forbid_change();
-- Rows leave only with a purge: the record deleted (a state) and its retention over.
CREATE FUNCTION records_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM records r
                   WHERE r.id = (to_jsonb(OLD) ->> CASE WHEN TG_TABLE_NAME = 'records'
                                                         THEN 'id' ELSE 'record_id' END)::bigint
                     AND r.state = 'deleted' AND r.retain_until < now()) THEN
        RAISE EXCEPTION '% rows leave only with a record purged after its retention',
            TG_TABLE_NAME USING ERRCODE = '42501';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER records_purge_only BEFORE DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION records_purge_only();
CREATE TRIGGER record_versions_purge_only BEFORE DELETE ON record_versions
    FOR EACH ROW EXECUTE FUNCTION records_purge_only();
CREATE TRIGGER record_signatures_purge_only BEFORE DELETE ON record_signatures
    FOR EACH ROW EXECUTE FUNCTION records_purge_only();
REVOKE UPDATE, DELETE, TRUNCATE ON record_audit FROM CURRENT_USER;

ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON records
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_versions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_signatures ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_signatures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_signatures
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_signing_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_signing_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_signing_credentials
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_settings
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE record_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON record_audit
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
