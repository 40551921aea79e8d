-- Messages: an idempotency key is its sender's own. Keyed on the tenant alone, a user sending
-- with a key such as 'schedule-fire-<id>' took the place of that fire's message, which was then
-- never sent.
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_idempotency_key_key;
ALTER TABLE messages ADD CONSTRAINT messages_sender_key UNIQUE (tenant_id, sender_id, idempotency_key);
