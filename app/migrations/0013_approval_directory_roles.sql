-- The roles each directory user holds: whom a group task (approvers of type role, or
-- candidate_groups) notifies and reminds.
ALTER TABLE approval_directory ADD COLUMN roles text[] NOT NULL DEFAULT '{}';
