INSERT INTO tickets (title) VALUES ($1), ($2) RETURNING id, number, title_len
