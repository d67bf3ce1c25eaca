INSERT INTO users (email, pw, id, name) VALUES ('zed@example.com', NULL, 10, 'Zed')
