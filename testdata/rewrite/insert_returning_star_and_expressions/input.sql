INSERT INTO users AS u (name) VALUES ('Gus') RETURNING *, u.id * 2 AS twice, upper(u.name)
