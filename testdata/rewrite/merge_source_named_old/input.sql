MERGE INTO users u USING (VALUES (2, 'Bea3')) old (id, name) ON u.id = old.id WHEN MATCHED THEN UPDATE SET name = old.name
