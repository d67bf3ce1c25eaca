INSERT INTO users (id, name, last_login) VALUES (1, 'Al', '2024-09-09 00:00:00+00') ON CONFLICT (id) DO UPDATE SET last_login = excluded.last_login
