INSERT INTO users (name, email) VALUES ('Dup', 'al@example.com')
