MERGE INTO users AS u USING (VALUES (1, 'Al3')) AS s (id, name) ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name RETURNING *
