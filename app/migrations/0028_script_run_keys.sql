-- Scripts: a run started by a durable step carries the step's key, so the step re-run after a
-- crash finds its run instead of starting a second one. Only queued, running and succeeded runs
-- hold their key: a run that failed leaves it free, and the step's retry runs the script again.
ALTER TABLE script_runs ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX script_runs_once ON script_runs (tenant_id, run_by, script_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status IN ('queued', 'running', 'succeeded');
