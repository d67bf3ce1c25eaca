MERGE INTO users u USING (VALUES (1, 100)) s (id, new_id) ON u.id = s.id WHEN MATCHED THEN UPDATE SET id = s.new_id
