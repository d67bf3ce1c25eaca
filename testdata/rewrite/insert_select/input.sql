INSERT INTO users (name, email) SELECT upper(name), 'copy-' || email FROM users WHERE email IS NOT NULL ORDER BY id RETURNING id, email
