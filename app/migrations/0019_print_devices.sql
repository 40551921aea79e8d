-- Print devices: each tenant's printers (a CUPS queue now; an IPP URI or a site agent are
-- modelled for later) with their health, and print jobs submitted at most once.

CREATE TABLE print_printers (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    site text NOT NULL DEFAULT '',
    kind text NOT NULL CHECK (kind IN ('office', 'label')),
    transport text NOT NULL CHECK (transport IN ('cups', 'ipp', 'agent')),
    cups_queue text,
    ipp_uri text,
    agent_id text,
    defaults jsonb NOT NULL DEFAULT '{}',
    capabilities jsonb NOT NULL DEFAULT '{}',
    owners jsonb NOT NULL DEFAULT '[]',
    health text NOT NULL DEFAULT 'unknown'
        CHECK (health IN ('unknown', 'ready', 'paused', 'offline', 'media_empty', 'error', 'missing')),
    health_reasons jsonb NOT NULL DEFAULT '[]',
    health_message text NOT NULL DEFAULT '',
    health_version integer NOT NULL DEFAULT 0,
    health_checked_at timestamptz,
    health_changed_at timestamptz,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CHECK ((transport = 'cups') = (cups_queue IS NOT NULL)),
    CHECK ((transport = 'ipp') = (ipp_uri IS NOT NULL)),
    CHECK ((transport = 'agent') = (agent_id IS NOT NULL))
);
-- A CUPS queue belongs to one tenant: the index sees every tenant's rows, and compares names
-- as CUPS does, ignoring case.
CREATE UNIQUE INDEX print_printers_cups_queue ON print_printers (lower(cups_queue))
    WHERE cups_queue IS NOT NULL;

CREATE TABLE print_jobs (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL,
    printer_id bigint NOT NULL REFERENCES print_printers (id),
    source text NOT NULL CHECK (source IN ('render', 'raw')),
    render_id bigint,
    payload bytea,
    format text NOT NULL,
    title text NOT NULL,
    document_type text,
    document_id text,
    options jsonb NOT NULL DEFAULT '{}',
    -- Put into the CUPS job name and searched for before any second submission.
    token text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'submitting', 'pending', 'held', 'processing', 'stopped',
                          'completed', 'canceled', 'aborted', 'failed')),
    cups_job_id integer,
    state_reasons jsonb NOT NULL DEFAULT '[]',
    printer_message text NOT NULL DEFAULT '',
    impressions integer,
    error text,
    cancel_requested boolean NOT NULL DEFAULT false,
    deadline_at timestamptz NOT NULL,
    submit_attempts integer NOT NULL DEFAULT 0,
    reprint_of bigint REFERENCES print_jobs (id),
    requested_by text NOT NULL,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    submitted_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key),
    CHECK ((source = 'render') = (render_id IS NOT NULL)),
    CHECK ((source = 'raw') = (payload IS NOT NULL))
);
CREATE INDEX print_jobs_by_printer ON print_jobs (tenant_id, printer_id, id);
CREATE INDEX print_jobs_by_document ON print_jobs (tenant_id, document_type, document_id, id);

ALTER TABLE print_printers ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_printers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_printers
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE print_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE print_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON print_jobs
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
-- The health reconciler lists the tenants with printers in the 'print_reconciler' scope, which
-- request handlers never set; each tenant's printers are then checked in its own scope.
CREATE POLICY reconciler_scan ON print_printers FOR SELECT
    USING (current_setting('app.scope', true) = 'print_reconciler');
