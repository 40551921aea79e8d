-- The periodic integrity check walks every tenant's records. It lists the tenants in the
-- 'records_verifier' scope, which request handlers never set; each tenant is then verified in
-- its own scope.
CREATE POLICY verifier_scan ON record_audit FOR SELECT
    USING (current_setting('app.scope', true) = 'records_verifier');
