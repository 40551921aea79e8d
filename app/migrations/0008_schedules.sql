-- Scheduled tasks: schedules created at runtime (the database holds the truth) and one row per
-- fire, unique per schedule and scheduled time, so no fire runs twice.
CREATE TABLE schedules (
    id                     bigserial PRIMARY KEY,
    tenant_id              text        NOT NULL,
    name                   text        NOT NULL,
    code                   text        NOT NULL,
    trigger_kind           text        NOT NULL CHECK (trigger_kind IN ('cron', 'interval', 'once')),
    cron                   text,
    time_zone              text        NOT NULL DEFAULT 'UTC',
    every_seconds          bigint,
    anchor_at              timestamptz,
    once_at                timestamptz,
    start_at               timestamptz,
    end_at                 timestamptz,
    enabled                boolean     NOT NULL DEFAULT true,
    paused_reason          text,
    overlap_policy         text        NOT NULL DEFAULT 'skip'
                                       CHECK (overlap_policy IN ('skip', 'queue_one', 'allow')),
    misfire_policy         text        NOT NULL DEFAULT 'skip'
                                       CHECK (misfire_policy IN ('skip', 'fire_once')),
    misfire_window_seconds integer     NOT NULL DEFAULT 3600,
    timeout_seconds        integer     NOT NULL DEFAULT 300,
    retries                integer     NOT NULL DEFAULT 0,
    action                 jsonb       NOT NULL,
    -- Bumped by every edit, pause and resume: a fire armed under an older version is stale.
    version                integer     NOT NULL DEFAULT 1,
    next_fire_at           timestamptz,
    deleted_at             timestamptz,
    created_by             text        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX schedules_code ON schedules (tenant_id, code) WHERE deleted_at IS NULL;
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE deleted_at IS NULL AND enabled;

CREATE TABLE schedule_fires (
    id               bigserial PRIMARY KEY,
    tenant_id        text        NOT NULL,
    schedule_id      bigint      NOT NULL REFERENCES schedules (id),
    scheduled_for    timestamptz NOT NULL,
    kind             text        NOT NULL DEFAULT 'scheduled' CHECK (kind IN ('scheduled', 'manual')),
    schedule_version integer     NOT NULL,
    status           text        NOT NULL DEFAULT 'armed'
                                 CHECK (status IN ('armed', 'waiting', 'running', 'succeeded',
                                                   'failed', 'skipped', 'missed', 'cancelled')),
    reason           text,
    attempt          integer     NOT NULL DEFAULT 0,
    started_at       timestamptz,
    finished_at      timestamptz,
    output           jsonb,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schedule_id, scheduled_for, kind)
);
CREATE INDEX schedule_fires_by_schedule ON schedule_fires (tenant_id, schedule_id, scheduled_for DESC);

ALTER TABLE schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON schedules
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());
ALTER TABLE schedule_fires ENABLE ROW LEVEL SECURITY;
ALTER TABLE schedule_fires FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON schedule_fires
    USING (tenant_id = current_tenant()) WITH CHECK (tenant_id = current_tenant());

-- The reconciler and the pruning job work across tenants. They run in the 'scheduler' scope,
-- which request handlers never set: reading which schedules are overdue, and deleting old
-- finished fires. Everything else they do runs per tenant.
CREATE POLICY scheduler_scan ON schedules FOR SELECT
    USING (current_setting('app.scope', true) = 'scheduler');
CREATE POLICY scheduler_prune ON schedule_fires FOR DELETE
    USING (current_setting('app.scope', true) = 'scheduler' AND status IN
           ('succeeded', 'failed', 'skipped', 'missed', 'cancelled'));
CREATE POLICY scheduler_prune_read ON schedule_fires FOR SELECT
    USING (current_setting('app.scope', true) = 'scheduler');
