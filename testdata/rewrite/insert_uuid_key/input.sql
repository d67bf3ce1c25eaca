INSERT INTO documents (id, title, body, tags) VALUES ($1, $2, $3, $4) RETURNING id
