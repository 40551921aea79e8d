-- Approvals: messages correlated by business key and thrown signals share the signal store; a
-- sender's key (a REST message id, the throwing node visit) makes a repeat deliver nothing.
ALTER TABLE approval_signals ADD COLUMN source_key text;
CREATE UNIQUE INDEX approval_signals_once ON approval_signals (tenant_id, instance_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX approval_instances_by_business_key ON approval_instances (tenant_id, business_key)
    WHERE status = 'running';
