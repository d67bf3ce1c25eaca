INSERT INTO users (name) SELECT name FROM users WHERE false
