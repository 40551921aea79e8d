-- Scripts: tenant JavaScript with immutable versions, every run recorded, and the tenant's
-- sandbox settings (ctx.http allow-list, maxima for per-script limits).
CREATE TABLE scripts (
    id             bigserial PRIMARY KEY,
    tenant_id      text        NOT NULL,
    name           text        NOT NULL,
    description    text        NOT NULL DEFAULT '',
    language       text        NOT NULL DEFAULT 'javascript' CHECK (language = 'javascript'),
    enabled        boolean     NOT NULL DEFAULT true,
    latest_version integer     NOT NULL DEFAULT 1,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE script_versions (
    id              bigserial PRIMARY KEY,
    tenant_id       text        NOT NULL,
    script_id       bigint      NOT NULL REFERENCES scripts (id),
    version         integer     NOT NULL,
    code            text        NOT NULL,
    parameters      jsonb       NOT NULL DEFAULT '[]',
    timeout_ms      integer     NOT NULL CHECK (timeout_ms > 0),
    memory_limit_mb integer     NOT NULL CHECK (memory_limit_mb > 0),
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (script_id, version)
);

-- A saved version is history: it never changes and is never removed.
CREATE FUNCTION script_versions_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'script versions are immutable';
END $$;
CREATE TRIGGER script_versions_immutable BEFORE UPDATE OR DELETE ON script_versions
    FOR EACH ROW EXECUTE FUNCTION script_versions_are_immutable();

CREATE TABLE script_runs (
    id                bigserial PRIMARY KEY,
    tenant_id         text        NOT NULL,
    script_id         bigint      NOT NULL REFERENCES scripts (id),
    version           integer     NOT NULL,
    mode              text        NOT NULL CHECK (mode IN ('sync', 'async')),
    trigger           text        NOT NULL DEFAULT 'api',
    status            text        NOT NULL DEFAULT 'queued'
                                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed',
                                                    'syntax_error', 'timed_out', 'memory_exceeded',
                                                    'output_exceeded')),
    arguments         jsonb       NOT NULL,
    result            jsonb,
    console           jsonb,
    console_truncated boolean,
    error             jsonb,
    duration_ms       integer,
    memory_bytes      bigint,
    run_by            text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
CREATE INDEX script_runs_by_script ON script_runs (tenant_id, script_id, id DESC);

CREATE TABLE scripts_settings (
    tenant_id       text        PRIMARY KEY,
    http_allow_list text[]      NOT NULL DEFAULT '{}',
    max_timeout_ms  integer     NOT NULL DEFAULT 30000,
    max_memory_mb   integer     NOT NULL DEFAULT 64,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE scripts ENABLE ROW LEVEL SECURITY;
ALTER TABLE scripts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scripts
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE script_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE script_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON script_versions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE script_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE script_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON script_runs
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE scripts_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE scripts_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON scripts_settings
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
