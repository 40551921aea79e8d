-- Messages: users and the app's own senders in namespaces of their own. A user's id is a token's
-- `sub`, any text: a user named 'approvals' shared the approvals engine's keys (0027 keys a
-- message per sender) and could send first under one of its notices' keys, which was then never
-- sent. Senders are now 'user:<sub>' or 'system:<name>'. The rows before are the names the app's
-- modules send as (approvals, workflows, records, print-devices, schedule:<id>) or users' (a user
-- so named before cannot be told apart: its messages go with that sender's).
-- Every tenant's rows at once: row-level security is not forced on the owner for the rewrite
-- (inside this migration's transaction, so no other session sees it lifted). The key is dropped
-- meanwhile: a user named e.g. 'user:x' and a user 'x' would meet midway.
ALTER TABLE messages NO FORCE ROW LEVEL SECURITY;
ALTER TABLE messages DROP CONSTRAINT messages_sender_key;
UPDATE messages SET sender_id = CASE
    WHEN sender_id IN ('approvals', 'workflows', 'records', 'print-devices')
         OR sender_id ~ '^schedule:[0-9]+$' THEN 'system:' || sender_id
    ELSE 'user:' || sender_id END;
ALTER TABLE messages ADD CONSTRAINT messages_sender_key UNIQUE (tenant_id, sender_id, idempotency_key);
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
