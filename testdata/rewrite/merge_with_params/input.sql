MERGE INTO users u USING (SELECT $1::bigint AS id, $2::text AS name) s ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)
