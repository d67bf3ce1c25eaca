DELETE FROM auditpgx_entry
