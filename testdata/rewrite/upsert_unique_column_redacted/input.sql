INSERT INTO users (name, email, pw) VALUES ('Bea B', 'bea@example.com', 'pw-new') ON CONFLICT (email) DO UPDATE SET name = excluded.name, pw = excluded.pw RETURNING id
