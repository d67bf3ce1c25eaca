UPDATE auditpgx_entry SET created_by = 'mallory'
