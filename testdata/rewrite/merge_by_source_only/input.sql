MERGE INTO users u USING (SELECT id FROM users WHERE name = 'Al') s ON u.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET name = upper(u.name)
