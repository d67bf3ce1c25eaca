INSERT INTO users (name, email, pw, last_login) VALUES ($1, $2, $3, $4)
