-- Approvals: decision tables for business rule tasks, each save a new version of its key (a
-- process names the key, and a version when it must not move).
CREATE TABLE approval_decisions (
    id         bigserial   PRIMARY KEY,
    tenant_id  text        NOT NULL,
    key        text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    source     jsonb       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key, version)
);

ALTER TABLE approval_decisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_decisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_decisions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
