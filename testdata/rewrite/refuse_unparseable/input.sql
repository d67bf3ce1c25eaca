UPDATE users SET name = 'x' WHERE
