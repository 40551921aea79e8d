-- Deleting a definition archives it: its versions stay for the instances pinned to them.
ALTER TABLE approval_definitions ADD COLUMN archived_at timestamptz;
