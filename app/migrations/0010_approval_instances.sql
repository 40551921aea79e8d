-- Approvals: running instances (pinned to a published version), their tasks, and an immutable
-- timeline. The Inngest function approvals-instance drives an instance; decisions are database
-- transactions it re-reads whenever it wakes.
CREATE TABLE approval_instances (
    id            bigserial PRIMARY KEY,
    tenant_id     text        NOT NULL,
    definition_id bigint      NOT NULL REFERENCES approval_definitions (id),
    version       integer     NOT NULL,
    business_key  text,
    status        text        NOT NULL DEFAULT 'running'
                              CHECK (status IN ('running', 'completed', 'rejected', 'failed')),
    variables     jsonb       NOT NULL DEFAULT '{}',
    initiator     text        NOT NULL,
    current_nodes jsonb       NOT NULL DEFAULT '[]',
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);
CREATE UNIQUE INDEX approval_instances_business_key
    ON approval_instances (tenant_id, definition_id, business_key) WHERE business_key IS NOT NULL;

CREATE TABLE approval_tasks (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    node_id     text        NOT NULL,
    visit       integer     NOT NULL,
    assignee    text        NOT NULL,
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    decided_by  text,
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    UNIQUE (instance_id, node_id, visit, assignee)
);
CREATE INDEX approval_tasks_by_assignee ON approval_tasks (tenant_id, assignee, status);

CREATE TABLE approval_timeline (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    node_id     text,
    detail      jsonb       NOT NULL DEFAULT '{}',
    -- one entry per engine step: a retried step cannot write it twice
    step_key    text,
    UNIQUE (instance_id, step_key)
);
CREATE FUNCTION approval_timeline_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the approval timeline is append-only';
END $$;
CREATE TRIGGER approval_timeline_append_only BEFORE UPDATE OR DELETE ON approval_timeline
    FOR EACH ROW EXECUTE FUNCTION approval_timeline_is_append_only();

ALTER TABLE approval_instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_instances FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_instances
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE approval_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_tasks
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE approval_timeline ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_timeline FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON approval_timeline
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
