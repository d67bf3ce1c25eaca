INSERT INTO teams (id, name) VALUES (2, 'bee') ON CONFLICT (id) DO UPDATE SET name = excluded.name
