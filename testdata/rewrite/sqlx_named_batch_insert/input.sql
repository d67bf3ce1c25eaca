INSERT INTO users (name, email) VALUES ($1, $2),($3, $4)
