MERGE INTO users u USING (VALUES (1, 'Al2'), (10, 'Jo')) s (id, name) ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)
