-- Print templates: designs kept as drafts and immutable numbered versions, renders asked for and
-- done durably, and the PDFs they produced, kept once per tenant and SHA-256.

CREATE TABLE print_templates (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    key text NOT NULL,
    name text NOT NULL,
    draft jsonb NOT NULL,
    latest_version integer NOT NULL DEFAULT 0,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);

CREATE TABLE print_template_versions (
    tenant_id text NOT NULL,
    template_id bigint NOT NULL REFERENCES print_templates (id) ON DELETE CASCADE,
    version integer NOT NULL,
    source jsonb NOT NULL,
    content_hash text NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

CREATE TABLE print_outputs (
    tenant_id text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content bytea NOT NULL,
    size bigint NOT NULL,
    pages integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256)
);

CREATE TABLE print_renders (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    template_id bigint NOT NULL REFERENCES print_templates (id) ON DELETE CASCADE,
    version integer NOT NULL,
    items jsonb NOT NULL,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'done', 'failed')),
    output_sha256 text,
    pages integer,
    warnings jsonb NOT NULL DEFAULT '[]',
    error text,
    requested_by text NOT NULL,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX print_renders_by_template ON print_renders (tenant_id, template_id, id);

ALTER TABLE print_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_templates
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE print_template_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_template_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_template_versions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE print_outputs ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_outputs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_outputs
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE print_renders ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_renders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_renders
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
