-- Workflows: DAG and state-machine definitions (immutable numbered versions, one published),
-- their executions, every node or action run with its input, output, attempts and timing, and
-- the events sent to state machines, each with the transition it was accepted for.
CREATE TABLE workflow_definitions (
    id                bigserial PRIMARY KEY,
    tenant_id         text        NOT NULL,
    key               text        NOT NULL,
    name              text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('dag', 'state_machine')),
    latest_version    integer     NOT NULL DEFAULT 1,
    published_version integer,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key)
);

CREATE TABLE workflow_definition_versions (
    id            bigserial PRIMARY KEY,
    tenant_id     text        NOT NULL,
    definition_id bigint      NOT NULL REFERENCES workflow_definitions (id),
    version       integer     NOT NULL,
    format        text        NOT NULL CHECK (format IN ('json', 'yaml')),
    source        text        NOT NULL,
    -- The definition as validated (YAML and JSON sources give the same model).
    model         jsonb       NOT NULL,
    -- DAGs: the parallel groups (topological levels); state machines: null.
    groups        jsonb,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    UNIQUE (definition_id, version)
);

CREATE TABLE workflow_executions (
    id             bigserial PRIMARY KEY,
    tenant_id      text        NOT NULL,
    definition_id  bigint      NOT NULL REFERENCES workflow_definitions (id),
    version        integer     NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('dag', 'state_machine')),
    status         text        NOT NULL DEFAULT 'queued'
                               CHECK (status IN ('queued', 'running', 'paused', 'completed',
                                                 'failed', 'cancelled')),
    -- State machines: the state the interpreter is in, and the state after every accepted
    -- event (what the next event is checked against).
    current_state  text,
    target_state   text,
    input          jsonb       NOT NULL DEFAULT '{}',
    context        jsonb       NOT NULL DEFAULT '{}',
    output         jsonb,
    error          text,
    compensated    boolean     NOT NULL DEFAULT false,
    priority       integer     NOT NULL DEFAULT 0,
    started_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    ended_at       timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_executions_by_tenant ON workflow_executions (tenant_id, created_at DESC);

CREATE TABLE workflow_node_runs (
    id            bigserial PRIMARY KEY,
    tenant_id     text        NOT NULL,
    execution_id  bigint      NOT NULL REFERENCES workflow_executions (id),
    -- The step key, unique per execution: a replayed step finds its row.
    step_key      text        NOT NULL,
    node          text        NOT NULL,
    phase         text        NOT NULL CHECK (phase IN ('node', 'entry', 'exit', 'transition',
                                                       'on_error', 'compensate')),
    action_kind   text        NOT NULL,
    status        text        NOT NULL DEFAULT 'running'
                              CHECK (status IN ('running', 'retrying', 'succeeded', 'failed')),
    input         jsonb       NOT NULL DEFAULT '{}',
    output        jsonb,
    attempts      integer     NOT NULL DEFAULT 0,
    error         text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    -- Order of completion, for compensation newest first.
    completed_seq bigint,
    UNIQUE (execution_id, step_key)
);
CREATE SEQUENCE workflow_completion_seq;

CREATE TABLE workflow_events (
    id           bigserial PRIMARY KEY,
    tenant_id    text        NOT NULL,
    execution_id bigint      NOT NULL REFERENCES workflow_executions (id),
    name         text        NOT NULL,
    data         jsonb       NOT NULL DEFAULT '{}',
    from_state   text        NOT NULL,
    to_state     text        NOT NULL,
    transition   integer     NOT NULL,
    status       text        NOT NULL DEFAULT 'accepted' CHECK (status IN ('accepted', 'applied')),
    sent_by      text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz
);
CREATE INDEX workflow_events_by_execution ON workflow_events (execution_id, id);

ALTER TABLE workflow_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workflow_definitions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE workflow_definition_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_definition_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workflow_definition_versions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE workflow_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_executions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workflow_executions
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE workflow_node_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_node_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workflow_node_runs
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE workflow_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON workflow_events
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
