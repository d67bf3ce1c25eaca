WITH x AS (DELETE FROM auditpgx_entry RETURNING 1) SELECT count(*) FROM x
