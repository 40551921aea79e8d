-- Approvals: call activities start a published definition as a child instance; the child
-- knows its parent and the step that started it (once per parent visit).
ALTER TABLE approval_instances
    ADD COLUMN parent_id   bigint REFERENCES approval_instances (id),
    ADD COLUMN parent_step text;
CREATE UNIQUE INDEX approval_instances_child_once
    ON approval_instances (tenant_id, parent_id, parent_step) WHERE parent_id IS NOT NULL;
