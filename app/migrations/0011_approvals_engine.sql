-- Approvals engine: node visits (what one decision settles, what FlowView colours), approval
-- modes and task actions, the manager directory, CC, signals, process-variable history, an
-- event log, tenant activity bindings for service tasks, and the interpreter's snapshot that a
-- hand-over or a resume continues from.
ALTER TABLE approval_instances DROP CONSTRAINT approval_instances_status_check;
ALTER TABLE approval_instances ADD CONSTRAINT approval_instances_status_check
    CHECK (status IN ('running', 'completed', 'rejected', 'failed', 'withdrawn', 'cancelled'));
ALTER TABLE approval_instances
    -- the run that owns the instance: a hand-over or resume starts the next generation and
    -- an older run stops at its next step
    ADD COLUMN generation    integer NOT NULL DEFAULT 0,
    ADD COLUMN engine_state  jsonb,
    ADD COLUMN status_reason text;

CREATE TABLE approval_node_visits (
    id            bigserial PRIMARY KEY,
    tenant_id     text        NOT NULL,
    instance_id   bigint      NOT NULL REFERENCES approval_instances (id),
    node_id       text        NOT NULL,
    visit         integer     NOT NULL,
    kind          text        NOT NULL,
    status        text        NOT NULL DEFAULT 'active'
                              CHECK (status IN ('active', 'completed', 'approved', 'rejected',
                                                'returned', 'cancelled', 'failed')),
    mode          text,
    ratio         double precision,
    veto          jsonb       NOT NULL DEFAULT '[]',
    due_at        timestamptz,
    deadline      jsonb,
    reminders     integer     NOT NULL DEFAULT 0,
    return_target text,
    entered_at    timestamptz NOT NULL,
    left_at       timestamptz,
    UNIQUE (instance_id, node_id, visit)
);
CREATE INDEX approval_node_visits_due ON approval_node_visits (tenant_id, due_at)
    WHERE status = 'active';

ALTER TABLE approval_tasks DROP CONSTRAINT approval_tasks_status_check;
ALTER TABLE approval_tasks ADD CONSTRAINT approval_tasks_status_check
    CHECK (status IN ('pending', 'queued', 'approved', 'rejected', 'returned', 'cancelled',
                      'transferred'));
ALTER TABLE approval_tasks
    ADD COLUMN kind       text    NOT NULL DEFAULT 'approval'
                                  CHECK (kind IN ('approval', 'added', 'resubmit')),
    ADD COLUMN seq        integer NOT NULL DEFAULT 0,
    -- a queued task becomes pending when this one is approved (sequential mode, add-signer)
    ADD COLUMN blocked_by bigint,
    -- while delegated: whom the task comes back to
    ADD COLUMN owner      text,
    ADD COLUMN claimed_by text;

CREATE TABLE approval_directory (
    tenant_id    text        NOT NULL,
    user_id      text        NOT NULL,
    manager_id   text,
    display_name text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE approval_cc (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    node_id     text        NOT NULL,
    user_id     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (instance_id, node_id, user_id)
);
CREATE INDEX approval_cc_by_user ON approval_cc (tenant_id, user_id);

CREATE TABLE approval_signals (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    name        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    sent_by     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- the node visit that caught it ("node#visit"); a signal is caught once
    consumed_by text
);

CREATE TABLE approval_variable_changes (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    name        text        NOT NULL,
    old_value   jsonb,
    new_value   jsonb,
    actor       text        NOT NULL,
    source      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE approval_events (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    instance_id bigint      NOT NULL REFERENCES approval_instances (id),
    name        text        NOT NULL,
    data        jsonb       NOT NULL DEFAULT '{}',
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE approval_activities (
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('http', 'script')),
    config     jsonb       NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TRIGGER approval_variable_changes_append_only BEFORE UPDATE OR DELETE
    ON approval_variable_changes FOR EACH ROW EXECUTE FUNCTION approval_timeline_is_append_only();
CREATE TRIGGER approval_events_append_only BEFORE UPDATE OR DELETE
    ON approval_events FOR EACH ROW EXECUTE FUNCTION approval_timeline_is_append_only();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['approval_node_visits', 'approval_directory', 'approval_cc',
                             'approval_signals', 'approval_variable_changes', 'approval_events',
                             'approval_activities'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant()) '
                       'WITH CHECK (tenant_id = current_tenant())', t);
    END LOOP;
END $$;

-- Resuming after a restart of the embedded executor lists running instances of every tenant;
-- it runs in the 'approvals' scope and only reads.
CREATE POLICY approvals_resume_scan ON approval_instances FOR SELECT
    USING (current_setting('app.scope', true) = 'approvals');
