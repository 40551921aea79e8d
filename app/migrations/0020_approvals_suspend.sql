-- Approvals: an administrator may suspend a running instance (it holds at its next node and
-- settles nothing until resumed); a failed service or script task leaves the instance
-- `failed` with its token held at the task, so an administrator can retry it.
ALTER TABLE approval_instances DROP CONSTRAINT approval_instances_status_check;
ALTER TABLE approval_instances ADD CONSTRAINT approval_instances_status_check
    CHECK (status IN ('running', 'suspended', 'completed', 'rejected', 'failed', 'withdrawn',
                      'cancelled'));
