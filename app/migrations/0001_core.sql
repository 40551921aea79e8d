-- Core: the tenant of the current transaction, as set by core/db Transaction. Row-level
-- security policies of every module compare tenant_id with it.
CREATE OR REPLACE FUNCTION current_tenant() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '') $$;
