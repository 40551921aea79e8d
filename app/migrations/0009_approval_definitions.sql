-- Approvals: process definitions (a draft being edited, kept verbatim for the designer) and
-- their published versions, numbered and immutable; instances will pin a version.
CREATE TABLE approval_definitions (
    id             bigserial PRIMARY KEY,
    tenant_id      text        NOT NULL,
    key            text        NOT NULL,
    name           text        NOT NULL,
    format         text        NOT NULL CHECK (format IN ('proflow', 'seed')),
    draft          jsonb       NOT NULL,
    latest_version integer     NOT NULL DEFAULT 0,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);

CREATE TABLE approval_definition_versions (
    id            bigserial PRIMARY KEY,
    tenant_id     text        NOT NULL,
    definition_id bigint      NOT NULL REFERENCES approval_definitions (id),
    version       integer     NOT NULL,
    compiled      jsonb       NOT NULL,
    source        jsonb       NOT NULL,
    content_hash  text        NOT NULL,
    published_by  text        NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (definition_id, version)
);

CREATE FUNCTION approval_versions_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'published process versions are immutable';
END $$;
CREATE TRIGGER approval_versions_immutable BEFORE UPDATE OR DELETE ON approval_definition_versions
    FOR EACH ROW EXECUTE FUNCTION approval_versions_are_immutable();

ALTER TABLE approval_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_definitions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE approval_definition_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_definition_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_definition_versions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
