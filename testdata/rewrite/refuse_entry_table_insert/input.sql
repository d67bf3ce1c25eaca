INSERT INTO auditpgx_entry (operation, table_name, object_id, tx_id) VALUES ('create', 'users', '9', 1)
