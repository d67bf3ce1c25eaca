INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT DO UPDATE SET name = excluded.name
